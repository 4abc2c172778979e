"""Signed events to the user's endpoints: one Standard Webhooks delivery per endpoint for each
source, verified with the spec's own library; a failing endpoint retried with growing delays,
then given up or disabled; a replay delivers again with the same webhook-id."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from receiver.kernel import keys, webhook_log
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_delete_at_twilio import SOURCES
from tests.support.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER, csrf_token, sign_in
from tests.support.webhook_sink import Sink, new_secret, running_sink
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog

OLD, NEW, OTHER = new_secret(1), new_secret(2), new_secret(3)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def _endpoints(sink: Sink, **extra: Any) -> str:
    return json.dumps([
        {"name": "crm", "url": sink.url("/crm"), "secrets": [OLD, NEW], **extra},
        {"name": "audit", "url": sink.url("/audit"), "secrets": [OTHER], "events": ["recording.archived", "recording.deleted"]},
    ])


def _settings(make: Callable[..., Settings], sink: Sink, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(webhook_endpoints=_endpoints(sink), webhook_allow_private=True,
                                  console_public_url="https://console.example.com")
    values.update(overrides)
    return make(**values)


def _scheduled(redis: Redis) -> dict[str, float]:
    """Scheduled job id -> seconds from now until it is due."""
    registry = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)  # type: ignore[no-untyped-call]
    return {job_id: registry.get_scheduled_time(job_id).timestamp() - time.time() for job_id in registry.get_job_ids()}


def _run_scheduled_now(redis: Redis) -> None:
    """What RQ's scheduler does once a job's time has come, now."""
    queue = Queue("recordings", connection=redis, serializer=JSONSerializer)
    registry = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)  # type: ignore[no-untyped-call]
    for job_id in registry.get_job_ids():
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        registry.remove(job)
        queue.enqueue_job(job)


@pytest.mark.parametrize("source", list(SOURCES))
def test_each_source_s_archive_is_one_verified_delivery_per_endpoint(
    source: str, pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, sink: Sink, redis: Redis, capfd: pytest.CaptureFixture[str],
) -> None:
    settings = _settings(pipeline_settings, sink)
    receiver = start_receiver(settings)
    add, callback, _, _ = SOURCES[source]
    rec = getattr(standin.state, add)(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url(source), callback(rec)).status_code == 204
    assert receiver.post(receiver.url(source), callback(rec)).status_code == 204  # Twilio's retry: one event
    drain(settings)

    crm, audit = sink.at("/crm"), sink.at("/audit")
    assert len(crm) == 1 and len(audit) == 1
    # Verified by the spec's library, with either secret of the rotation; never with another's.
    for secret in (OLD, NEW):
        event = Webhook(secret).verify(crm[0].body, crm[0].headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER).verify(crm[0].body, crm[0].headers)
    assert len(crm[0].headers["webhook-signature"].split(" ")) == 2
    assert Webhook(OTHER).verify(audit[0].body, audit[0].headers)["type"] == "recording.archived"
    assert crm[0].headers["webhook-id"] != audit[0].headers["webhook-id"]

    data = event["data"]
    assert event["type"] == "recording.archived"
    assert (data["source"], data["recording_sid"], data["account_sid"], data["status"]) == (source, rec.sid, ACCOUNT_SID, "completed")
    media = settings.storage_path / source / ACCOUNT_SID / f"{rec.sid}.{SOURCES[source][3]}"
    assert data["storage"]["media"] == str(media)
    assert data["size_bytes"] == media.stat().st_size and len(data["sha256"]) == 64
    assert data["console_url"] == f"https://console.example.com/recordings/{source}/{rec.sid}"
    delivery = webhook_log.delivery(redis, crm[0].headers["webhook-id"])
    assert delivery is not None and delivery["state"] == "delivered" and delivery["attempts"] == "1"
    logged = "".join(capfd.readouterr())
    assert "webhook delivery settled" in logged
    assert not any(secret.removeprefix("whsec_") in logged for secret in (OLD, NEW, OTHER))


def test_absent_failed_and_deleted_reach_the_endpoints_that_want_them(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, sink: Sink,
) -> None:
    settings = _settings(pipeline_settings, sink, delete_at_twilio="after-archive", delete_delay="0")
    receiver = start_receiver(settings)
    add, callback, _, _ = SOURCES["voice"]
    rec = getattr(standin.state, add)(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), callback(rec)).status_code == 204
    absent = getattr(standin.state, add)(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), callback(absent, RecordingStatus="absent", ErrorCode="13617")).status_code == 204
    drain(settings)

    def types(path: str) -> list[tuple[str, str]]:
        return sorted((e["type"], e["data"]["recording_sid"]) for e in (json.loads(r.body) for r in sink.at(path)))

    assert types("/crm") == sorted([("recording.archived", rec.sid), ("recording.deleted", rec.sid),
                                    ("recording.absent", absent.sid)])
    assert types("/audit") == sorted([("recording.archived", rec.sid), ("recording.deleted", rec.sid)])
    absent_event = next(json.loads(r.body) for r in sink.at("/crm") if json.loads(r.body)["type"] == "recording.absent")
    assert absent_event["data"]["error_code"] == "13617"


def test_a_failing_endpoint_is_retried_with_growing_delays_honouring_retry_after_then_given_up(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    sink: Sink, redis: Redis,
) -> None:
    settings = _settings(pipeline_settings, sink, webhook_first_retry="10s", webhook_max_delay="1h", webhook_retry_for="10m")
    sink.answers["/crm"] = [(503, {}), (500, {}), (429, {"Retry-After": "200"}), (307, {"Location": sink.url("/elsewhere")})]
    sink.otherwise["/crm"] = 500
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), SOURCES["voice"][1](rec)).status_code == 204
    drain(settings)
    waits: list[float] = []
    while scheduled := _scheduled(redis):
        assert len(scheduled) == 1 and len(waits) < 20
        waits.append(next(iter(scheduled.values())))
        _run_scheduled_now(redis)
        drain(settings)

    # Each wait from the upper half of its doubling step (10 s, 20 s, …), the 429's no sooner than
    # its Retry-After; they add up to no more than WEBHOOK_RETRY_FOR; then the delivery is given up.
    assert waits[2] >= 199
    for number, wait in enumerate(waits, 1):
        if number != 3:
            assert 10 * 2 ** (number - 1) / 2 - 2 <= wait <= 10 * 2 ** (number - 1) + 1, (number, waits)
    assert sum(waits) <= 600 + 5 and len(waits) >= 4
    crm = sink.at("/crm")
    msg_id = crm[0].headers["webhook-id"]
    assert len(crm) == len(waits) + 1 and {r.headers["webhook-id"] for r in crm} == {msg_id}
    assert sink.at("/elsewhere") == []  # a redirect is a failed attempt, never followed
    delivery = webhook_log.delivery(redis, msg_id)
    assert delivery is not None and delivery["state"] == "given_up"
    statuses = [a["status"] for a in webhook_log.attempts(redis, msg_id)]
    assert statuses[:4] == [503, 500, 429, 307] and set(statuses[4:]) == {500}
    assert len(sink.at("/audit")) == 1  # the other endpoint got its delivery at once


def test_an_endpoint_failing_for_days_is_disabled_shown_and_enabled_again_from_the_console_and_replays_keep_their_id(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    start_console: Callable[[Settings], str], standin: Any, sink: Sink, redis: Redis,
) -> None:
    settings = _settings(pipeline_settings, sink, webhook_first_retry="10s", webhook_disable_after="3d",
                         admin_username=USER, admin_password=PASSWORD, admin_secret_key=SECRET_KEY, admin_token=TOKEN)
    sink.otherwise["/crm"] = 500
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), SOURCES["voice"][1](rec)).status_code == 204
    drain(settings)
    msg_id = sink.at("/crm")[0].headers["webhook-id"]
    # Days pass: the endpoint's failing spell began four days ago (its clock is Redis's record of it).
    redis.hset(webhook_log.endpoint_key("crm"), "failing_since", time.time() - 4 * 24 * 3600)
    _run_scheduled_now(redis)
    drain(settings)
    assert webhook_log.disabled(redis, "crm") and not webhook_log.disabled(redis, "audit")
    assert (webhook_log.delivery(redis, msg_id) or {})["state"] == "endpoint_disabled"
    assert _scheduled(redis) == {}  # no more attempts
    # A new event for a disabled endpoint is kept, not sent.
    second = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), SOURCES["voice"][1](second)).status_code == 204
    drain(settings)
    assert len(sink.at("/crm")) == 2

    console = sign_in(start_console(settings))
    page = console.get("/webhooks")
    assert page.status_code == 200 and "disabled" in page.text and "Enable again" in page.text
    assert OLD not in page.text and OLD.removeprefix("whsec_") not in page.text
    detail = console.get(f"/webhooks/{msg_id}").text
    assert "500" in detail and "sink says no" in detail
    token = csrf_token(page.text)
    assert console.post("/webhooks/endpoints/crm/enable", data={"csrf_token": token}).status_code == 303
    assert not webhook_log.disabled(redis, "crm")

    sink.otherwise["/crm"] = 204
    assert console.post(f"/webhooks/{msg_id}/replay", data={"csrf_token": token}).status_code == 303
    assert console.post(f"/webhooks/{msg_id}/replay", data={}).status_code == 403  # CSRF still guards it
    drain(settings)
    crm = sink.at("/crm")
    assert crm[-1].headers["webhook-id"] == msg_id and crm[-1].body == crm[0].body
    Webhook(NEW).verify(crm[-1].body, crm[-1].headers)
    assert (webhook_log.delivery(redis, msg_id) or {})["state"] == "delivered"
    assert "delivered" in console.get(f"/webhooks/{msg_id}").text
    metrics = console.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'recording_receiver_webhook_deliveries_total{endpoint="crm",outcome="endpoint_disabled"} 2.0' in metrics
    assert 'recording_receiver_webhook_deliveries_total{endpoint="crm",outcome="delivered"} 1.0' in metrics


def test_without_the_allowance_no_loopback_or_private_endpoint_is_ever_called(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    sink: Sink, redis: Redis,
) -> None:
    port = sink.base_url.rsplit(":", 1)[1]
    targets = {"plain": sink.url("/plain"), "literal": f"https://127.0.0.1:{port}/literal",
               "named": f"https://localhost:{port}/named", "private": "https://10.0.0.1/private"}
    endpoints = [{"name": name, "url": target, "secret": OLD} for name, target in targets.items()]
    settings = pipeline_settings(webhook_endpoints=json.dumps(endpoints))
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), SOURCES["voice"][1](rec)).status_code == 204
    drain(settings)
    assert sink.received == []
    said = {}
    for name in targets:
        [delivery] = [d for d in webhook_log.recent(redis) if d["endpoint"] == name and d["sid"] == rec.sid]
        [attempt] = webhook_log.attempts(redis, delivery["id"])
        assert attempt["status"] is None and delivery["state"] == "retrying"
        said[name] = attempt["excerpt"]
    assert "not HTTPS" in said["plain"]
    assert "127.0.0.1 is not a public address" in said["literal"]
    assert "resolves to" in said["named"] and "not a public address" in said["named"]
    assert "10.0.0.1 is not a public address" in said["private"]
    assert all("/literal" not in text and "/named" not in text for text in said.values())  # only scheme, host and port


def test_reactions_registered_by_entry_point_run_as_jobs_of_their_own_and_a_failing_one_blocks_nothing(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    sink: Sink, redis: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real distribution on sys.path, as `pip install` would leave one: its entry points are real.
    site = tmp_path / "site"
    (site / "rr_test_reactions-0.1.dist-info").mkdir(parents=True)
    (site / "rr_test_reactions-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: rr-test-reactions\nVersion: 0.1\n")
    (site / "rr_test_reactions-0.1.dist-info" / "entry_points.txt").write_text(
        "[recording_receiver.reactions]\nbroken = rr_test_reactions:broken\nrecord = rr_test_reactions:record\n")
    (site / "rr_test_reactions.py").write_text(
        "import json, pathlib\n"
        "def record(event):\n"
        "    with open(pathlib.Path(__file__).with_name('seen.jsonl'), 'a') as f:\n"
        "        f.write(json.dumps(event) + '\\n')\n"
        "    return 'noted'\n"
        "def broken(event):\n"
        "    raise RuntimeError('this reaction always fails')\n")
    monkeypatch.syspath_prepend(str(site))
    settings = _settings(pipeline_settings, sink)
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("voice"), SOURCES["voice"][1](rec)).status_code == 204
    drain(settings)

    seen = [json.loads(line) for line in (site / "seen.jsonl").read_text().splitlines()]
    assert [(e["type"], e["data"]["recording_sid"]) for e in seen] == [("recording.archived", rec.sid)]
    assert Catalog(redis).get("voice", rec.sid)["archived_at"]
    assert len(sink.at("/crm")) == 1 and len(sink.at("/audit")) == 1
    broken = Job.fetch(f"rr-react-broken-voice-{rec.sid}", connection=redis, serializer=JSONSerializer)
    assert broken.get_status() in ("scheduled", "failed")  # RQ retries it, alone
    assert Job.fetch(f"rr-react-record-voice-{rec.sid}", connection=redis, serializer=JSONSerializer).return_value() == {
        "reaction": "record", "result": "noted"}
    timeline = [json.loads(e) for e in redis.lrange(keys.timeline_key("voice", rec.sid), 0, -1)]
    reactions = {(e["reaction"], e["outcome"]) for e in timeline if e["kind"] == "reaction"}
    assert reactions == {("record", "done"), ("broken", "failed")}
