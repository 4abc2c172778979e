"""Errors the pure layer raises; each carries a reason that is safe to show a caller."""

from __future__ import annotations


class TooManyFields(Exception):
    """More form fields than any callback has (answered 413, before any signature work).

    Not a ValueError: parsing turns those into BadCallback, a 403.
    """


class BadCallback(ValueError):
    """A callback that is signed correctly but cannot be understood (answered 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadSetting(ValueError):
    """A setting that cannot work, named with what is expected (never its value: it may be a secret)."""
