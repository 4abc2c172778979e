"""The Redis hash of an ordinary RQ job, made by RQ itself once, so each enqueue fills in only its payload."""

from __future__ import annotations

import functools
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from redis import Redis
from rq.job import Retry
from rq.queue import Queue
from rq.serializers import JSONSerializer

from receiver.kernel.keys import JOB_FUNCTION

RESULT_TTL_SECONDS = 7 * 24 * 3600
# Placeholder intervals; the job replaces them with backoff and jitter when it fails.
RETRY_INTERVALS = [5, 15, 45, 120, 300, 600, 900, 1800]
# The fields that differ from one job to the next; every other field is the same for all.
VARYING = ("data", "created_at", "enqueued_at", "description")


def rq_time(moment: datetime | None = None) -> str:
    """RQ's own timestamp format (`rq.utils.utcformat`)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rq_time_at(epoch: float) -> str:
    """`rq_time` of an epoch time; the date and time are formatted once a second, not per batch."""
    fraction, whole = math.modf(epoch)
    second, micros = int(whole), round(fraction * 1_000_000)  # rounded as datetime rounds them
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_rq_second(second)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _rq_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class JobTemplate:
    """RQ's `Job.to_dict()` of a sample job: the static fields, and how to make the varying ones."""

    def __init__(self, queue_name: str, timeout: int, retry_max: int) -> None:
        queue = Queue(queue_name, connection=Redis(), serializer=JSONSerializer)
        sample = queue.create_job(
            JOB_FUNCTION,
            args=[{}],
            job_id="template",
            timeout=timeout,
            result_ttl=RESULT_TTL_SECONDS,
            description="template",
            retry=Retry(max=retry_max, interval=RETRY_INTERVALS[: max(1, retry_max)]),
        )
        sample.origin = queue_name
        fields = sample.to_dict()
        fields["status"] = "queued"
        # Empty fields are left out: RQ reads an absent field exactly as an empty one, and every
        # field written costs Redis time on the hot path.
        self.static: dict[str, str] = {
            k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in fields.items() if k not in VARYING and v != ""
        }
        self.queue_key = queue.key

    @staticmethod
    def data(payload: dict[str, Any]) -> bytes:
        """The job's function and arguments, serialized as RQ's JSONSerializer does.

        Left uncompressed: RQ reads uncompressed data as it is (`Job.restore` falls back when
        zlib does not recognise it; JSON never starts like a zlib stream), and the bodies are
        small, so compressing cost more CPU on the hot path than it saved in Redis.
        """
        job: list[Any] = [JOB_FUNCTION, None, [payload], {}]
        try:
            # orjson: the stdlib encoder was a tenth of a callback's cost (py-spy), orjson's JSON
            # is the same data for `json.loads`, which is what RQ's JSONSerializer reads it with.
            return orjson.dumps(job)
        except orjson.JSONEncodeError:
            # Lone surrogates (possible only from a JSON callback's "\ud800" escapes) are refused
            # by orjson; the stdlib escapes them, as RQ's own serializer would.
            return json.dumps(job, separators=(",", ":")).encode()
