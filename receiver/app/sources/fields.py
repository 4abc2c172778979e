"""Field readers shared by the source parsers: required values and SID checks with clear reasons."""

from __future__ import annotations

from receiver.app.form import Params
from receiver.kernel.errors import BadCallback
from receiver.kernel.sids import is_sid


def required(params: Params, name: str) -> str:
    value = params.first(name)
    if not value:
        raise BadCallback(f"{name} is missing")
    return value


def sid(params: Params, name: str, prefix: str, *, optional: bool = False) -> str | None:
    value = params.first(name)
    if not value:
        if optional:
            return None
        raise BadCallback(f"{name} is missing")
    if not is_sid(value, prefix):
        raise BadCallback(f"{name} is not a {prefix} SID")
    return value


def required_sid(params: Params, name: str, prefix: str) -> str:
    value = sid(params, name, prefix)
    assert value is not None
    return value


def first_of(params: Params, names: tuple[str, ...]) -> tuple[str, str] | None:
    """(name, value) of the first of `names` that was sent non-empty; for sources whose field
    names vary between Twilio products and versions."""
    for name in names:
        value = params.first(name)
        if value:
            return name, value
    return None


def kept(params: Params, names: tuple[str, ...]) -> dict[str, str]:
    """The named fields that were sent, first value of each."""
    # The dict itself, not `params.first`: seven names per voice callback, and the method calls
    # were a quarter of this function's time (timeit: 0.80 -> 0.59 µs).
    out = {}
    for name in names:
        values = params.get(name)
        if values and values[0] != "":
            out[name] = values[0]
    return out


def integer(params: Params, name: str) -> None:
    """Reject a present-but-garbled number; Twilio always sends digits."""
    value = params.first(name)
    if value and not value.lstrip("-").isdigit():
        raise BadCallback(f"{name} is not a number")
