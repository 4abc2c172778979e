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
# Hash: "{source}|{outcome}" -> deletions at Twilio by what became of them (deleted, held, refused, ...).
DELETIONS = f"{PREFIX}:deletions"
# Hash: "{endpoint}|{outcome}" -> webhook deliveries by what became of them (delivered, retrying, given_up, ...).
WEBHOOK_DELIVERIES = f"{PREFIX}:webhook_deliveries"
# Hash: "{status}" -> count of Twilio API responses by HTTP status.
TWILIO_RESPONSES = f"{PREFIX}:twilio_responses"
# Hash: "{component}" (receiver, worker) -> counter increments dropped because memory was full.
COUNTER_DROPS = f"{PREFIX}:counter_drops"
# Sorted set: receiver "host:pid" -> when it last wrote its counters (every few seconds while alive).
RECEIVERS_SEEN = f"{PREFIX}:receivers_seen"
RECEIVER_ALIVE_SECONDS = 30.0


def minute(kind: str, epoch_seconds: float) -> str:
    """Per-minute buckets of a counter hash, kept a few hours for the console's rates."""
    return f"{PREFIX}:{kind}:m:{int(epoch_seconds // 60)}"


def callback_field(source: str, status: str, verdict: str) -> str:
    return f"{source}|{status}|{verdict}"

# Latency histograms: hash fields "{labels}|{le}" hold the count of observations in that bucket
# alone (not cumulative), "{labels}|sum" their sum, where {labels} is the label values joined by
# "|"; the console turns them into Prometheus histograms at scrape time.
ENQUEUE_SECONDS = f"{PREFIX}:enqueue_seconds"  # receiver: dedupe-and-enqueue round trip; {source}
ARCHIVE_LATENCY_SECONDS = f"{PREFIX}:archive_latency_seconds"  # first callback -> media stored; {source}
JOB_SECONDS = f"{PREFIX}:job_seconds"  # one job run; {source}|{outcome}
TWILIO_REST_SECONDS = f"{PREFIX}:twilio_rest_seconds"  # one Twilio REST call; {source}|{endpoint}|{status class}
HISTOGRAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def bucket_field(labels: str, value: float) -> str:
    for bound in HISTOGRAM_BUCKETS:
        if value <= bound:
            return f"{labels}|{bound}"
    return f"{labels}|inf"


def sum_field(labels: str) -> str:
    return f"{labels}|sum"
