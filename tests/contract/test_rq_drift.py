"""RQ routines we copied or replaced: when RQ changes one, this fails and names where ours lives."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import textwrap

import pytest

from workers.runtime.rq_internals import atomic_retry

# RQ's routine → (the place that copies or replaces it, the sha256 of the RQ source it was made
# from, rq 3.0.0). On a failure: read RQ's change, carry what matters into our place, then
# record the new digest here.
COPIED = {
    "rq.job.Job.retry": ("workers/runtime/rq_internals/atomic_retry.py: AtomicRetryJob.retry", atomic_retry.COPIED_SOURCE_SHA256),
    "rq.worker.base.BaseWorker.clean_registries": (
        "workers/runtime/rq_internals/thread_worker.py: ThreadWorker.clean_registries (a short lock instead of RQ's)",
        "3b6158366e582b3c81007c27f4a7b534715c09d2d7f095f67abe9b83acf3ea4e",
    ),
    "rq.worker.base.BaseWorker.handle_exception": (
        "workers/runtime/rq_internals/thread_worker.py: ThreadWorker.handle_exception (one log line per failure)",
        "978511dbc9008843c02eeb19ea5c633050a0857d15d78e4703645bc0e0c0af72",
    ),
    "rq.worker.base.BaseWorker.unsubscribe": (
        "workers/runtime/rq_internals/thread_worker.py: ThreadWorker.unsubscribe (waits for the pubsub thread)",
        "2d502abd0ef3f9092e59219b24497b7b618de325fda4403445ece6bc403e87ba",
    ),
    "rq.scheduler.RQScheduler.start": (
        "workers/runtime/rq_internals/thread_worker.py: ThreadScheduler.start (a thread instead of a forked process)",
        "eb4f7e87507912ff92cedf8624815630d60b39587f394585fd4e4e16a43db8e5",
    ),
}


def _source_digest(qualified: str) -> str:
    module_name, class_name, attribute = qualified.rsplit(".", 2)
    routine = getattr(getattr(importlib.import_module(module_name), class_name), attribute)
    return hashlib.sha256(textwrap.dedent(inspect.getsource(routine)).encode()).hexdigest()


@pytest.mark.parametrize("qualified", sorted(COPIED))
def test_rq_still_has_the_routine_we_copied(qualified: str) -> None:
    ours, digest = COPIED[qualified]
    assert _source_digest(qualified) == digest, f"RQ changed {qualified}: review {ours}"
