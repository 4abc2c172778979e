"""The project's exception tree: its common base, and the errors the pure layer raises (each with a reason safe to show a caller)."""

from __future__ import annotations


class RecordingReceiverError(Exception):
    """The base of every exception this project defines: `except RecordingReceiverError` catches
    ours and nothing of a library's. Each subclass keeps its other base (ValueError, RedisError,
    ...), so whatever caught it before still does."""


class TooManyFields(RecordingReceiverError):
    """More form fields than any callback has (answered 413, before any signature work).

    Not a ValueError: parsing turns those into BadCallback, a 403.
    """


class BadCallback(RecordingReceiverError, ValueError):
    """A callback that is signed correctly but cannot be understood (answered 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadSetting(RecordingReceiverError, ValueError):
    """A setting that cannot work, named with what is expected (never its value: it may be a secret)."""
