"""The retry schedule and endpoint disabling as functions of the settings and a clock: no test waits a day."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from redis import Redis

from receiver.kernel import webhook_log
from tests.support.webhook_sink import new_secret
from workers.outbound import backoff, health
from workers.outbound.send import retry_after
from workers.settings import WorkerSettings

DAY = 24 * 3600


def _top(low: float, high: float) -> float:
    return high


def _bottom(low: float, high: float) -> float:
    return low


def test_the_default_schedule_grows_and_spans_about_a_day() -> None:
    settings = WorkerSettings()
    for rand in (_top, _bottom):
        waits = backoff.schedule(settings, rand)
        assert waits == sorted(waits) and waits[0] <= 30 and max(waits) <= 6 * 3600
        assert DAY - 6 * 3600 <= sum(waits) <= DAY
    assert 10 <= len(backoff.schedule(settings, _top)) <= len(backoff.schedule(settings, _bottom)) <= 20


def test_every_wait_is_in_the_upper_half_of_its_step_and_never_sooner_than_retry_after() -> None:
    settings = WorkerSettings(webhook_first_retry="10s", webhook_max_delay="1h")
    for attempt in range(1, 15):
        ceiling = min(3600, 10 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff.delay(settings, attempt) <= ceiling
    assert backoff.delay(settings, 1, retry_after=500) >= 500
    assert backoff.delay(settings, 1, retry_after=10 * DAY) <= 3600  # a year's Retry-After is not obeyed blindly


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412460) == 20
    assert retry_after("soon") is None and retry_after(None) is None


@pytest.fixture
def clean(redis: Redis) -> Iterator[Redis]:
    redis.delete(webhook_log.endpoint_key("crm"))
    yield redis
    redis.delete(webhook_log.endpoint_key("crm"))


def test_an_endpoint_is_disabled_only_once_every_attempt_failed_for_the_whole_window(clean: Redis) -> None:
    settings = WorkerSettings(webhook_disable_after="5d",
                              webhook_endpoints=SecretStr(json.dumps([{"name": "crm", "url": "https://x", "secret": new_secret(1)}])))
    start = 1_000_000.0
    assert not health.failed(clean, settings, "crm", start, "HTTP 500")
    assert not health.failed(clean, settings, "crm", start + 4 * DAY, "HTTP 500")
    health.succeeded(clean, "crm", start + 4 * DAY + 1)  # one success starts the spell over
    assert not health.failed(clean, settings, "crm", start + 6 * DAY, "HTTP 500")
    assert not webhook_log.disabled(clean, "crm")
    assert health.failed(clean, settings, "crm", start + 11 * DAY + 2, "HTTP 503")
    assert webhook_log.disabled(clean, "crm")
    assert not health.failed(clean, settings, "crm", start + 12 * DAY, "HTTP 503")  # disabled once
    assert "HTTP 503" in clean.hget(webhook_log.endpoint_key("crm"), "disabled_reason").decode()  # type: ignore[union-attr]
    assert webhook_log.enable(clean, "crm") and not webhook_log.disabled(clean, "crm")
    assert not webhook_log.enable(clean, "crm")
