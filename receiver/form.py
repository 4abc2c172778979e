"""Parses a urlencoded body or query string once, into the multi-valued mapping Twilio signs."""

from __future__ import annotations

from urllib.parse import unquote

from receiver.errors import BadCallback


class Params(dict[str, list[str]]):
    """Every value of every parameter, in the shape `RequestValidator.get_values` understands."""

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None


def _unquote(text: str) -> str:
    if "%" in text or "+" in text:
        return unquote(text.replace("+", " "), errors="strict")
    return text


def parse_params(raw: bytes | str) -> Params:
    """Decode strictly: a body that is not UTF-8 cannot have been signed by Twilio.

    Same result as `parse_qsl(text, keep_blank_values=True, errors="strict")` (a property test
    holds it to that), with less work per pair: only text that has escapes is unquoted (profiled:
    parsing was a tenth of a callback's time, most of it in parse_qsl's per-pair machinery).
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        params = Params()
        for part in text.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            params.setdefault(_unquote(name), []).append(_unquote(value))
        return params
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadCallback(f"body is not valid urlencoded UTF-8: {type(exc).__name__}") from None
