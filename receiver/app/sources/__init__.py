"""One parser per recording source, each turning a verified callback into a RecordingEvent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from receiver.app.form import Params
from receiver.kernel.events import RecordingEvent


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed callback we acknowledge but do not queue (unknown status, other room event)."""

    reason: str
    sid: str | None = None


Parser = Callable[[Params], RecordingEvent | Ignored]
