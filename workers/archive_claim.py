"""A short exclusive claim on archiving one recording, so two runs of its job never both archive it.

RQ runs a job at least once: a run whose lease lapsed (say Redis was away and the lease could
not be renewed) can overlap with its retry. The claim makes the second run wait and retry,
after which it finds the recording already archived.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Iterator

from redis import Redis

from receiver import keys
from workers.failures import TransientError

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ArchiveClaims:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._release = redis.register_script(_RELEASE)

    @contextlib.contextmanager
    def hold(self, source: str, sid: str) -> Iterator[None]:
        key = keys.archive_lock_key(source, sid)
        token = uuid.uuid4().hex
        if not self._redis.set(key, token, nx=True, ex=self._ttl):
            raise TransientError("another worker is archiving this recording", retry_after=min(self._ttl, 30))
        try:
            yield
        finally:
            self._release(keys=[key], args=[token])
