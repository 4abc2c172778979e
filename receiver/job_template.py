"""Builds the Redis hash of an ordinary RQ job once, so each enqueue only fills in its payload."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timezone
from typing import Any

from redis import Redis
from rq.job import Retry
from rq.queue import Queue
from rq.serializers import JSONSerializer

from receiver.keys import JOB_FUNCTION

RESULT_TTL_SECONDS = 7 * 24 * 3600
# Placeholder intervals; the job replaces them with backoff and jitter when it fails.
RETRY_INTERVALS = [5, 15, 45, 120, 300, 600, 900, 1800]


def _rq_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobTemplate:
    """The fields RQ's own `Job.to_dict()` writes, made by RQ itself from a sample job."""

    def __init__(self, queue_name: str, timeout: int, retry_max: int) -> None:
        queue = Queue(queue_name, connection=Redis(), serializer=JSONSerializer)
        sample = queue.create_job(
            JOB_FUNCTION,
            args=[{}],
            job_id="template",
            timeout=timeout,
            result_ttl=RESULT_TTL_SECONDS,
            description="template",
            retry=Retry(max=retry_max, interval=RETRY_INTERVALS[:retry_max]),
        )
        sample.origin = queue_name
        fields = sample.to_dict()
        fields["status"] = "queued"
        self._static = {k: (v if isinstance(v, (bytes, str)) else str(v)) for k, v in fields.items()}
        self.queue_key = queue.key

    def fields(self, payload: dict[str, Any], description: str) -> list[bytes | str]:
        """Flat HSET arguments for one job carrying `payload`."""
        stamp = _rq_time(datetime.now(timezone.utc))
        data = json.dumps([JOB_FUNCTION, None, [payload], {}], separators=(",", ":")).encode()
        fields = dict(self._static)
        fields.update(data=zlib.compress(data, 1), created_at=stamp, enqueued_at=stamp, description=description)
        flat: list[bytes | str] = []
        for name, value in fields.items():
            flat.extend((name, value))
        return flat
