"""RQ's own worker classes with our job module imported first, as RQ's performance notes advise.

`rq worker-pool -w tests.perf.rq_preloaded.Worker` imports this module in the pool's parent
before it forks the workers, so every worker and every work horse it forks starts with
`workers.jobs.entry` (httpx, redis, pydantic, structlog…) already loaded: a forking worker then pays
per job only what forking per job costs (a fresh WorkerContext in each horse), not the imports.
"""

from __future__ import annotations

from rq.worker import SimpleWorker as RQSimpleWorker
from rq.worker import Worker as RQWorker

import workers.jobs.entry  # noqa: F401  (the preload)


class Worker(RQWorker):
    """RQ's forking worker, unchanged."""


class SimpleWorker(RQSimpleWorker):
    """RQ's in-process worker, unchanged."""
