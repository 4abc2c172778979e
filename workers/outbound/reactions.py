"""In-process reactions: callables registered under the entry point group `recording_receiver.reactions`, each run as its own job after an archive."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Retry
from rq.serializers import JSONSerializer

from receiver.kernel import keys
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.job_template import RETRY_INTERVALS
from workers.settings import WorkerSettings

GROUP = "recording_receiver.reactions"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class UnknownReaction(RecordingReceiverError):
    """The job names a reaction no installed package registers (any more): nothing to run."""


def registered() -> list[EntryPoint]:
    """The group's entry points, looked up once per process (and again only if sys.path changes):
    scanning every installed distribution takes tens of milliseconds, too much per archive."""
    return list(_registered(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _registered(path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    return tuple(sorted(entry_points(group=GROUP), key=lambda ep: ep.name))


def schedule(settings: WorkerSettings, redis: Redis, event: dict[str, Any]) -> list[str]:
    """Queue one job per registered reaction; one job id per (reaction, recording), so an archive
    run twice queues each reaction once."""
    data = event["data"]
    queue = Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)
    retry = Retry(max=settings.retry_max, interval=RETRY_INTERVALS[: settings.retry_max]) if settings.retry_max > 0 else None
    queued = []
    for ep in registered():
        job_id = f"rr-react-{_UNSAFE.sub('_', ep.name)}-{data['source']}-{data['recording_sid']}"
        try:
            queue.enqueue(keys.REACT_FUNCTION, {"v": 1, "reaction": ep.name, "event": event}, job_id=job_id, unique=True,
                          retry=retry, job_timeout=settings.job_timeout_seconds, result_ttl=7 * 24 * 3600,
                          failure_ttl=7 * 24 * 3600, description=f"reaction {ep.name} to {data['recording_sid']}")
        except DuplicateJobError:
            continue
        queued.append(job_id)
    return queued


def find(name: str) -> Callable[[dict[str, Any]], Any]:
    """The reaction registered under `name`: only entry points of the group are ever loaded."""
    for ep in registered():
        if ep.name == name:
            function: Callable[[dict[str, Any]], Any] = ep.load()
            return function
    raise UnknownReaction(f"no reaction named {name[:80]!r} is registered under {GROUP}")
