"""What an export keeps in Redis: its rows and cursors, failure causes, jobs in flight, and the lock."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from redis import Redis

from receiver.kernel import keys
from receiver.kernel.errors import RecordingReceiverError
from workers.export.rows import ExportRow

# The lock lapses this long after its holder stopped renewing it (killed, or its host lost).
LOCK_SECONDS = 60
_STATE = "state"


class ExportBusy(RecordingReceiverError):
    """Another export holds the lock."""


class ExportState:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._token = secrets.token_hex(8)

    # -- the lock: one export at a time ---------------------------------------------

    def lock(self) -> None:
        if not self.redis.set(keys.EXPORT_LOCK, self._token, nx=True, ex=LOCK_SECONDS):
            ttl = self.redis.ttl(keys.EXPORT_LOCK)
            raise ExportBusy(f"another export is running (its lock lapses within {ttl}s of it stopping)")

    def renew(self) -> None:
        self.redis.set(keys.EXPORT_LOCK, self._token, xx=True, ex=LOCK_SECONDS)

    def unlock(self) -> None:
        if self.redis.get(keys.EXPORT_LOCK) == self._token.encode():
            self.redis.delete(keys.EXPORT_LOCK)

    # -- beginning: resume the same plan unless it finished, else start afresh ---------

    def begin(self, plan: str, rows: Iterable[ExportRow], restart: bool) -> tuple[list[ExportRow], bool]:
        """The rows to work on and whether they are an interrupted run's, resumed."""
        fresh = list(rows)
        run = self.run_fields()
        if not restart and run.get("plan") == plan and run.get(_STATE) in ("running", "stopped"):
            stored = {k.decode(): ExportRow.from_json(v) for k, v in self._hgetall(keys.EXPORT_ROWS).items()}
            return [stored.get(row.key, row) for row in fresh], True
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.EXPORT_RUN, keys.EXPORT_ROWS, keys.EXPORT_CAUSES, keys.EXPORT_IN_FLIGHT)
        pipe.hset(keys.EXPORT_RUN, mapping={"plan": plan, _STATE: "running"})
        pipe.execute()
        return fresh, False

    def run_fields(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self._hgetall(keys.EXPORT_RUN).items()}

    def publish(self, fields: Mapping[str, str]) -> None:
        """The progress the console shows, replaced field by field."""
        self.redis.hset(keys.EXPORT_RUN, mapping=dict(fields))  # type: ignore[arg-type]

    def save_row(self, row: ExportRow) -> None:
        self.redis.hset(keys.EXPORT_ROWS, row.key, row.to_json())

    # -- failures by cause --------------------------------------------------------------

    def count_cause(self, cause: str) -> None:
        self.redis.hincrby(keys.EXPORT_CAUSES, cause, 1)

    def causes(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self._hgetall(keys.EXPORT_CAUSES).items()}

    # -- jobs queued and not settled yet ------------------------------------------------

    def add_in_flight(self, entries: Mapping[str, str]) -> None:
        if entries:
            self.redis.hset(keys.EXPORT_IN_FLIGHT, mapping=dict(entries))  # type: ignore[arg-type]

    def in_flight(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self._hgetall(keys.EXPORT_IN_FLIGHT).items()}

    def in_flight_count(self) -> int:
        return int(self.redis.hlen(keys.EXPORT_IN_FLIGHT))  # type: ignore[arg-type]

    def settled(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if ids:
            self.redis.hdel(keys.EXPORT_IN_FLIGHT, *ids)

    # -- the dry run's count, for the real run's ETA ---------------------------------

    def keep_estimate(self, plan: str, to_queue: int) -> None:
        self.redis.hset(keys.EXPORT_ESTIMATES, plan, json.dumps(to_queue))

    def estimate(self, plan: str) -> int | None:
        raw: Any = self.redis.hget(keys.EXPORT_ESTIMATES, plan)
        return int(json.loads(raw)) if raw else None

    def _hgetall(self, key: str) -> dict[bytes, bytes]:
        return self.redis.hgetall(key)  # type: ignore[return-value]
