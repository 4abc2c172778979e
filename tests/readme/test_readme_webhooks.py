"""The README's "Events to your endpoints (webhooks) and reactions": its example, its figures, its commands.

The deliveries themselves (signatures, retries, disabling, replay, address rules, reactions) are
tested end to end in tests/e2e/test_webhooks.py."""

from __future__ import annotations

import json
import re
import tomllib

from redis import Redis

from receiver.kernel import webhook_log
from receiver.kernel.webhook_endpoints import EVENT_TYPES, parse
from tests.readme.test_readme_cli import run
from tests.readme.test_readme_cli_mistakes import assert_one_line
from tests.support import readme
from workers.outbound import backoff, reactions
from workers.settings import WorkerSettings

SECTION = "## Events to your endpoints (webhooks) and reactions"


def _section() -> str:
    text = readme.text()
    start = text.index(SECTION)
    return text[start:text.index("\n## ", start + 1)]


def test_the_example_setting_is_valid_and_names_known_events() -> None:
    block = "\n".join(readme.block_after(SECTION).lines)
    value = re.search(r"WEBHOOK_ENDPOINTS='(.*)'", block, re.S)
    assert value is not None
    [endpoint] = parse(value.group(1))
    assert endpoint.name == "crm" and endpoint.events <= set(EVENT_TYPES)
    for event in EVENT_TYPES:
        assert f"`{event}`" in _section() or f"`.{event.split('.')[1]}`" in _section()


def test_the_default_schedule_is_what_the_readme_says() -> None:
    section = " ".join(_section().split())
    settings = WorkerSettings()
    assert (settings.webhook_first_retry_seconds, settings.webhook_max_delay_seconds) == (30, 6 * 3600)
    assert settings.webhook_retry_for_seconds == 24 * 3600 and settings.webhook_disable_after_seconds == 5 * 24 * 3600
    most = backoff.schedule(settings, lambda low, high: low)
    fewest = backoff.schedule(settings, lambda low, high: high)
    said = re.search(r"(\d+) to (\d+) attempts with the defaults", section)
    assert said is not None and (int(said.group(1)), int(said.group(2))) == (len(fewest) + 1, len(most) + 1)


def test_the_reactions_example_names_our_entry_point_group() -> None:
    block = "\n".join(readme.block_after("**Reactions**").lines)
    assert reactions.GROUP in tomllib.loads(block)["project"]["entry-points"]


def test_webhooks_lists_endpoints_and_webhook_enable_turns_a_disabled_one_back_on(redis_url: str, redis: Redis) -> None:
    endpoints = json.dumps([{"name": "crm", "url": "https://crm.example", "secret": "whsec_" + "A" * 44}])
    redis.sadd(webhook_log.ENDPOINTS, "crm")
    redis.hset(webhook_log.endpoint_key("crm"), mapping={"disabled_at": 1.0, "disabled_reason": "every attempt failed"})
    try:
        listed = run("webhooks", REDIS_URL=redis_url, WEBHOOK_ENDPOINTS=endpoints)
        assert listed.returncode == 0, listed.stderr
        assert re.search(r"^crm\s+DISABLED .*every attempt failed", listed.stdout, re.M)
        assert "AAAA" not in listed.stdout
        enabled = run("webhook-enable", "crm", REDIS_URL=redis_url)
        assert enabled.returncode == 0 and "enabled    crm" in enabled.stdout
        assert not webhook_log.disabled(redis, "crm")
        assert re.search(r"^crm\s+ok$", run("webhooks", REDIS_URL=redis_url, WEBHOOK_ENDPOINTS=endpoints).stdout, re.M)
        assert_one_line(run("webhook-enable", "crm", REDIS_URL=redis_url), "webhook-enable", "is not disabled")
        assert_one_line(run("webhooks", REDIS_URL=redis_url, WEBHOOK_ENDPOINTS="[{}]"), "webhooks", "WEBHOOK_ENDPOINTS")
    finally:
        redis.srem(webhook_log.ENDPOINTS, "crm")
        redis.delete(webhook_log.endpoint_key("crm"))
