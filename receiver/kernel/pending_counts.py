"""Counter increments held in memory until they are written to Redis: merged, bounded, given back on failure."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from receiver.kernel import stats

Amount = int | float
Slot = tuple[str, str]  # (hash key, field)
# Each field is a few hundred bytes at most: 10,000 of them is a few MB, and holds hours of a
# Redis outage (the totals' fields never grow; per-minute buckets add a few dozen a minute).
MAX_FIELDS = 10_000


class Pipe(Protocol):
    """What a batch needs of a Redis pipeline, sync or asyncio alike (both queue commands synchronously)."""

    def hincrby(self, name: str, key: str, amount: int = 1) -> object: ...

    def hincrbyfloat(self, name: str, key: str, amount: float = 1.0) -> object: ...

    def expire(self, name: str, time: int) -> object: ...


@dataclass(frozen=True)
class Batch:
    increments: dict[Slot, Amount]
    ttls: dict[str, int]

    def fill(self, pipe: Pipe) -> None:
        for (key, name), amount in self.increments.items():
            if isinstance(amount, int):
                pipe.hincrby(key, name, amount)
            else:
                pipe.hincrbyfloat(key, name, amount)
        for key, ttl in self.ttls.items():
            pipe.expire(key, ttl)

    def __bool__(self) -> bool:
        return bool(self.increments)


class PendingCounts:
    """Thread-safe. When full it still takes increments to the fields it holds, so totals keep
    counting through any outage; only a new field is refused, and the counts it carried are added
    to `stats.COUNTER_DROPS` (a field it always makes room for) and to `dropped_since_asked()`."""

    def __init__(self, component: str, max_fields: int = MAX_FIELDS) -> None:
        self._lock = threading.Lock()
        self._increments: dict[Slot, Amount] = {}
        self._ttls: dict[str, int] = {}
        self._max_fields = max_fields
        self._drops: Slot = (stats.COUNTER_DROPS, component)
        self._dropped = 0

    def add(self, key: str, name: str, amount: Amount = 1, ttl: int | None = None) -> None:
        with self._lock:
            self._merge((key, name), amount, ttl)

    def observe(self, key: str, labels: str, value: float, count: int = 1) -> None:
        """`count` observations of `value` into the histogram hash `key` (see receiver.kernel.stats)."""
        with self._lock:
            self._merge((key, stats.bucket_field(labels, value)), count, None)
            self._merge((key, stats.sum_field(labels)), float(value * count), None)

    def take(self) -> Batch:
        with self._lock:
            batch = Batch(self._increments, self._ttls)
            self._increments, self._ttls = {}, {}
            return batch

    def give_back(self, batch: Batch) -> None:
        """A batch whose write failed: merged into what came since, for the next write to carry."""
        with self._lock:
            for slot, amount in batch.increments.items():
                self._merge(slot, amount, batch.ttls.get(slot[0]))

    def dropped_since_asked(self) -> int:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
            return dropped

    def counts_held(self) -> int:
        """The counts waiting to be written (sums, which are not counts, left out)."""
        with self._lock:
            return sum(amount for amount in self._increments.values() if isinstance(amount, int))

    def __len__(self) -> int:
        with self._lock:
            return len(self._increments)

    def _merge(self, slot: Slot, amount: Amount, ttl: int | None) -> None:
        held = self._increments.get(slot)
        if held is None and slot != self._drops and len(self._increments) >= self._max_fields:
            # A sum's float is not a count of events: the counts lost are its buckets' and totals'.
            lost = amount if isinstance(amount, int) else 0
            if lost:
                self._dropped += lost
                self._increments[self._drops] = int(self._increments.get(self._drops, 0)) + lost
            return
        self._increments[slot] = amount if held is None else held + amount
        if ttl is not None:
            self._ttls[slot[0]] = ttl
