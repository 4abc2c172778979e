"""Counter names in Redis, so every receiver and worker process, on any host, adds to the same totals."""

from __future__ import annotations

PREFIX = "rr:stats"
MINUTE_TTL_SECONDS = 3 * 3600

# Hash: "{source}|{status}|{verdict}" -> count since the beginning (Prometheus counters).
CALLBACKS = f"{PREFIX}:callbacks"
# Hash: reason -> count.
SIGNATURE_FAILURES = f"{PREFIX}:signature_failures"
# Hash: "{source}|{outcome}" -> count, and "{source}|{outcome}|seconds" -> summed seconds.
JOBS = f"{PREFIX}:jobs"
# Hash: receiver "host:pid" -> events waiting in its local spool (0 once drained).
SPOOL = f"{PREFIX}:spool"
# Hash: "{status}" -> count of Twilio API responses by HTTP status.
TWILIO_RESPONSES = f"{PREFIX}:twilio_responses"


def minute(kind: str, epoch_seconds: float) -> str:
    """Per-minute buckets of a counter hash, kept a few hours for the console's rates."""
    return f"{PREFIX}:{kind}:m:{int(epoch_seconds // 60)}"


def callback_field(source: str, status: str, verdict: str) -> str:
    return f"{source}|{status}|{verdict}"

# Histograms: hash with one field per bucket upper bound ("0.1", …, "+Inf": not cumulative),
# plus "sum" and "count". The console turns them into Prometheus histograms at scrape time.
HISTOGRAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def histogram(name: str, source: str) -> str:
    """`job_seconds` (a job's run time) or `archive_latency` (callback received → media stored)."""
    return f"{PREFIX}:hist:{name}:{source}"


def bucket_for(value: float) -> str:
    for bound in HISTOGRAM_BUCKETS:
        if value <= bound:
            return str(bound)
    return "+Inf"
