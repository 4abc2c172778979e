"""What the source modules need of a job's context: the settings and the Twilio REST clients."""

from __future__ import annotations

from typing import Protocol

from workers.settings import WorkerSettings
from workers.twilio_rest.client import TwilioRest


class RestContext(Protocol):
    """Satisfied by the jobs' `WorkerContext`; named here so this room never imports the jobs'."""

    @property
    def settings(self) -> WorkerSettings: ...

    @property
    def rest(self) -> TwilioRest: ...
