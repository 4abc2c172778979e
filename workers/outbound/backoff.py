"""When the next attempt of a delivery goes, and when a delivery or an endpoint is given up: functions of the settings."""

from __future__ import annotations

import random
from collections.abc import Callable

from workers.settings import WorkerSettings


def delay(settings: WorkerSettings, attempt: int, retry_after: float | None = None,
          rand: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds before the attempt after failed attempt number `attempt` (1 = the first): doubling
    from WEBHOOK_FIRST_RETRY up to WEBHOOK_MAX_DELAY, each drawn from its upper half (jitter spreads
    the retries of many deliveries that failed together), never sooner than a Retry-After asks."""
    ceiling = min(float(settings.webhook_max_delay_seconds), settings.webhook_first_retry_seconds * 2.0 ** (attempt - 1))
    wait = rand(ceiling / 2, ceiling)
    if retry_after is not None:
        wait = max(wait, min(retry_after, float(settings.webhook_max_delay_seconds)))
    return wait


def gives_up(settings: WorkerSettings, chain_started_at: float, next_at: float) -> bool:
    """True when the next attempt would fall past WEBHOOK_RETRY_FOR from the chain's first attempt."""
    return next_at - chain_started_at > settings.webhook_retry_for_seconds


def schedule(settings: WorkerSettings, rand: Callable[[float, float], float] = random.uniform) -> list[float]:
    """Every delay a delivery that always fails waits, first to last (what the README's figures come from)."""
    waits: list[float] = []
    elapsed = 0.0
    while True:
        wait = delay(settings, len(waits) + 1, rand=rand)
        if gives_up(settings, 0.0, elapsed + wait):
            return waits
        waits.append(wait)
        elapsed += wait
