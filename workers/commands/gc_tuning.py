"""Garbage-collector settings for a long-running server process, applied in each process `serve` runs."""

from __future__ import annotations

import gc

# Collect less often than the default (700, 10, 10): a full collection stalls every request in flight.
THRESHOLDS = (10_000, 20, 50)


def tune_for_serving() -> None:
    """Everything loaded so far lives for the process: keep the collector from rescanning it.

    Called by `serve` only, never by the app factory, so a test process (or any other host)
    that builds an app keeps its own collector settings."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
