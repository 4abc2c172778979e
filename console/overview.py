"""The overview: is the receiver taking callbacks, is anything stuck or failing, in one read."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from console import fleet
from console.failures import FailureIndex
from console.replies import integer, mapping, number, optional_number
from receiver.kernel import keys, stats

MINUTES = 60
# Per-minute buckets live three hours; reading them all finds the last callback even when quiet.
LOOKBACK_MINUTES = stats.MINUTE_TTL_SECONDS // 60
_BARS = "▁▂▃▄▅▆▇█"


@dataclass
class Rate:
    source: str
    verdict: str
    minutes: list[int]  # oldest first, the last entry is the current minute

    @property
    def this_minute(self) -> int:
        return self.minutes[-1]

    @property
    def per_minute_15(self) -> float:
        return round(sum(self.minutes[-15:]) / 15, 2)

    @property
    def last_hour(self) -> int:
        return sum(self.minutes)

    @property
    def spark(self) -> str:
        top = max(self.minutes) or 1
        return "".join(_BARS[0] if n == 0 else _BARS[max(1, round(n / top * (len(_BARS) - 1)))] for n in self.minutes)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "verdict": self.verdict, "per_minute": self.minutes,
                "last_hour": self.last_hour, "per_minute_15": self.per_minute_15}


@dataclass
class Overview:
    now: float
    rates: list[Rate]
    last_callback_at: float | None
    callbacks_total: dict[str, int]
    signature_failures: list[tuple[str, int, int]]  # reason, last hour, total
    queue: fleet.QueueState
    failed_last_hour: int
    workers_alive: int
    worker_processes: int
    busy_workers: int
    jobs: list[dict[str, Any]]
    twilio_responses: dict[str, int]
    spool: dict[str, int]
    reconcile: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    # The backlog export's progress as `recording-receiver export` writes it (running, stopped, finished).
    export: dict[str, Any] | None = None

    @property
    def callbacks_5min(self) -> int:
        return sum(sum(r.minutes[-5:]) for r in self.rates)

    @property
    def spool_depth(self) -> int:
        return sum(self.spool.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now, "callbacks": [r.to_json() for r in self.rates], "last_callback_at": self.last_callback_at,
            "callbacks_total": self.callbacks_total, "callbacks_last_5_minutes": self.callbacks_5min,
            "signature_failures": [{"reason": r, "last_hour": h, "total": t} for r, h, t in self.signature_failures],
            "queue": self.queue.to_json(), "failed_last_hour": self.failed_last_hour,
            "workers_alive": self.workers_alive, "worker_processes": self.worker_processes,
            "busy_workers": self.busy_workers, "jobs": self.jobs, "twilio_responses": self.twilio_responses,
            "spool": self.spool, "spool_depth": self.spool_depth, "reconcile": self.reconcile, "export": self.export,
        }


def load(redis: Redis, queue_name: str, failed: FailureIndex, now: float | None = None) -> Overview:
    now = now or time.time()
    minutes = [int(now // 60) - i for i in range(LOOKBACK_MINUTES)]
    pipe = redis.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(stats.minute("callbacks", minute * 60))
    for minute in minutes[:MINUTES]:
        pipe.hgetall(stats.minute("signature_failures", minute * 60))
    for key in (stats.CALLBACKS, stats.SIGNATURE_FAILURES, stats.JOBS, stats.TWILIO_RESPONSES, stats.SPOOL, keys.RECONCILE_LAST):
        pipe.hgetall(key)
    pipe.hgetall(keys.EXPORT_RUN)
    replies = pipe.execute()
    export = mapping(replies.pop())
    callback_buckets = [mapping(r) for r in replies[:LOOKBACK_MINUTES]]
    signature_buckets = [mapping(r) for r in replies[LOOKBACK_MINUTES:LOOKBACK_MINUTES + MINUTES]]
    totals, signatures, jobs, twilio, spool, reconcile = (mapping(r) for r in replies[LOOKBACK_MINUTES + MINUTES:])
    workers = fleet.workers(redis)
    return Overview(
        now=now,
        rates=_rates(callback_buckets[:MINUTES]),
        last_callback_at=next((m * 60.0 for m, b in zip(minutes, callback_buckets, strict=False) if b), None),
        callbacks_total=_by_verdict(totals),
        signature_failures=_signatures(signature_buckets, signatures),
        queue=fleet.queue_state(redis, queue_name, now),
        # From each failure's own time: registry scores mix TTLs (reconciler jobs keep theirs shorter).
        failed_last_hour=sum(1 for g in failed.scan().groups for j in g.jobs if (j.failed_at or 0) >= now - 3600),
        workers_alive=len(workers),
        worker_processes=fleet.processes(workers),
        busy_workers=sum(1 for w in workers if w.state == "busy"),
        jobs=_jobs(jobs),
        twilio_responses={k: integer(v) for k, v in sorted(twilio.items())},
        spool={k: integer(v) for k, v in sorted(spool.items())},
        reconcile=_reconcile(reconcile),
        export=_export(export),
    )


def _rates(buckets: list[dict[str, str]]) -> list[Rate]:
    """(source, verdict) -> per-minute counts, summed over statuses; buckets come newest first."""
    series: dict[tuple[str, str], list[int]] = {}
    for age, bucket in enumerate(buckets):
        for name, count in bucket.items():
            source, _, rest = name.partition("|")
            verdict = rest.rpartition("|")[2] or rest
            series.setdefault((source, verdict), [0] * len(buckets))[len(buckets) - 1 - age] += integer(count)
    return [Rate(source, verdict, counts) for (source, verdict), counts in sorted(series.items())]


def _by_verdict(totals: dict[str, str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for name, count in totals.items():
        verdict = name.rpartition("|")[2]
        result[verdict] = result.get(verdict, 0) + integer(count)
    return dict(sorted(result.items()))


def _signatures(buckets: list[dict[str, str]], totals: dict[str, str]) -> list[tuple[str, int, int]]:
    hour: dict[str, int] = {}
    for bucket in buckets:
        for reason, count in bucket.items():
            hour[reason] = hour.get(reason, 0) + integer(count)
    reasons = sorted(set(hour) | set(totals), key=lambda r: (-hour.get(r, 0), r))
    return [(r, hour.get(r, 0), integer(totals.get(r))) for r in reasons]


def _jobs(raw: dict[str, str]) -> list[dict[str, Any]]:
    """Workers' "{source}|{outcome}" counts and "{source}|{outcome}|seconds" sums, as rows."""
    rows = []
    for name, count in sorted(raw.items()):
        parts = name.split("|")
        if len(parts) != 2:
            continue
        seconds = number(raw.get(f"{name}|seconds"))
        n = integer(count)
        rows.append({"source": parts[0], "outcome": parts[1], "count": n, "seconds": seconds,
                     "average_seconds": round(seconds / n, 3) if n else None})
    return rows


def _reconcile(raw: dict[str, str]) -> dict[str, Any] | None:
    """The reconciler's last pass; JSON fields (per source) are decoded, the rest kept as text."""
    if not raw:
        return None
    result: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = value
        result[name] = decoded
    result["at"] = _moment(raw.get("at", ""))
    return result


def _export(raw: dict[str, str]) -> dict[str, Any] | None:
    """The export's progress: counts as numbers, `rows` (per source and account) decoded."""
    if not raw:
        return None
    result: dict[str, Any] = dict(raw)
    try:
        rows = json.loads(raw.get("rows") or "[]")
    except ValueError:
        rows = []
    result["rows"] = rows if isinstance(rows, list) else []
    result["updated_at"] = optional_number(raw.get("updated_at", ""))
    return result


def _moment(value: str) -> float | None:
    """Epoch seconds, whether the reconciler wrote a number or an ISO 8601 time."""
    seconds = optional_number(value)
    if seconds is not None:
        return seconds
    try:
        moment = datetime.fromisoformat(value)  # 3.11 reads a trailing Z too
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
