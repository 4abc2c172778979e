"""The only functions our workers run: a job naming any other callable fails, unimported, with the reason on it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, ClassVar

from receiver.kernel import keys
from receiver.kernel.errors import RecordingReceiverError
from workers.runtime.rq_internals.atomic_retry import AtomicRetryJob

# Every function we enqueue, by the dotted name the job hash carries. RQ itself would import and
# call any name it finds there, so whoever could write to Redis could run any importable callable.
ALLOWED_FUNCTIONS = frozenset({
    keys.JOB_FUNCTION, keys.RECONCILE_FUNCTION, keys.DELETE_FUNCTION, keys.DELIVER_FUNCTION, keys.REACT_FUNCTION,
})
# Names earlier releases stored in job hashes, and the function each now means: a job queued or
# scheduled before an upgrade still runs after it (workers must be upgraded before receivers).
RENAMED_FUNCTIONS = {"workers.reconcile_job.reconcile": keys.RECONCILE_FUNCTION}
_SHOWN_NAME_LENGTH = 120


class JobRefused(RecordingReceiverError):
    """The job's last line says what was refused; no retry could make it allowed."""


class AllowlistedJob(AtomicRetryJob):
    """RQ's job, except that resolving its function refuses any name not on the allowlist, before
    importing anything (an import alone runs a module's code), that it has no callbacks, and that a
    retry commits all at once (see `AtomicRetryJob`)."""

    allowed_functions: ClassVar[frozenset[str]] = ALLOWED_FUNCTIONS

    def refusal(self) -> str | None:
        """Why this job must not run, or None when it may."""
        name = self.func_name
        if name not in self.allowed_functions and name not in RENAMED_FUNCTIONS:
            return f"refused to run {str(name)[:_SHOWN_NAME_LENGTH]!r}: not a job function of recording-receiver"
        if self.instance is not None:
            return f"refused to run {name!r} on an instance: our jobs are plain functions"
        named = [n for n in (self._success_callback_name, self._failure_callback_name, self._stopped_callback_name) if n]
        if named:
            return f"refused to run {name!r} with callbacks {[n[:_SHOWN_NAME_LENGTH] for n in named]}: our jobs have none"
        return None

    @property
    def func(self) -> Callable[..., Any]:
        reason = self.refusal()
        if reason is not None:
            # Refused now, refused on every attempt: spend no retries on it.
            self.retries_left = 0
            raise JobRefused(reason)
        if self.func_name in RENAMED_FUNCTIONS:
            return _imported(RENAMED_FUNCTIONS[self.func_name])
        function: Callable[..., Any] = super().func
        return function

    # We enqueue no callbacks, so a callback name in a job hash came from someone else: never
    # import it. RQ calls the failure callback after a refusal, and on abandoned jobs too.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


def _imported(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.rpartition(".")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function
