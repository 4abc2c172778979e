"""A short exclusive claim on archiving one recording, so two runs of its job never both archive it.

RQ runs a job at least once: a run whose lease lapsed (say Redis was away and the lease could
not be renewed) can overlap with its retry. The claim makes the second run wait, after which it
finds the recording archived. The claim is renewed while its holder lives and lapses within one
lease when the holder dies (SIGKILL, OOM), so a dead holder costs no more than the job's own lease.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

from redis import Redis
from redis.exceptions import RedisError

from receiver.kernel import keys, logs
from workers.failures import Deferred

log = logs.get("workers.jobs.archive_claim")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class ArchiveClaims:
    def __init__(self, redis: Redis, ttl_seconds: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1000, int(ttl_seconds * 1000))
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    @contextlib.contextmanager
    def hold(self, source: str, sid: str) -> Iterator[None]:
        key = keys.archive_lock_key(source, sid)
        token = uuid.uuid4().hex
        if not self._redis.set(key, token, nx=True, px=self._ttl_ms):
            left = int(self._redis.pttl(key))  # type: ignore[arg-type]
            raise Deferred("another run is archiving this recording", wait=max(1.0, left / 1000))
        stop = threading.Event()
        renewer = threading.Thread(target=self._keep, args=(key, token, stop), name=f"claim-{sid}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            self._release(keys=[key], args=[token])

    def _keep(self, key: str, token: str, stop: threading.Event) -> None:
        """Renew three times a lease; a missed renewal (Redis away) is retried on the next beat."""
        while not stop.wait(self._ttl_ms / 3000):
            try:
                if not self._renew(keys=[key], args=[token, self._ttl_ms]):
                    log.warning("archive claim lost to another run", key=key)
                    return
            except RedisError as exc:
                log.warning("archive claim not renewed", key=key, error=type(exc).__name__)
