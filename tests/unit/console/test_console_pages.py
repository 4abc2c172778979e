"""What the pages and the JSON API show: lists, filters, search, failures, replays, health, metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from console import metrics
from receiver.kernel import keys, stats
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support.console.helpers import (
    PASSWORD,
    SECRET_KEY,
    TOKEN,
    USER,
    csrf_token,
    fail_job,
    seed,
    session_csrf,
    sid,
    sign_in,
)
from tests.support.paths import REPO_ROOT
from tests.support.servers import RedisProcess, wait_for
from workers.commands.settings import Settings

ROOT = REPO_ROOT
BEARER = {"authorization": f"Bearer {TOKEN}"}


def _all_pages(client: httpx.Client, query: str) -> list[list[str]]:
    pages, cursor = [], ""
    while True:
        body = client.get(f"/api/recordings?{query}" + (f"&cursor={cursor}" if cursor else ""), headers=BEARER).json()
        pages.append([r["sid"] for r in body["recordings"]])
        cursor = body["next_cursor"]
        if not cursor:
            return pages


def test_recordings_page_newest_first_without_gaps_or_repeats(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    sids = seed(redis, 250)
    with httpx.Client(base_url=start_console(console_settings()), timeout=10) as client:
        pages = _all_pages(client, "limit=100")
        assert [len(p) for p in pages] == [100, 100, 50]
        assert [s for p in pages for s in p] == sids
    client = sign_in(start_console(console_settings()))
    first = client.get("/recordings")
    assert "250 recording(s)" in first.text and first.text.count("<tr") == 51
    older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert sids[50] in client.get(older).text and sids[49] not in client.get(older).text


def test_pagination_survives_recordings_seen_in_the_same_millisecond(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    seed(redis, 60, ties=7)
    expected = [m.decode().split(":")[1] for m in redis.zrevrange(keys.RECORDINGS_INDEX, 0, -1)]
    with httpx.Client(base_url=start_console(console_settings()), timeout=10) as client:
        for query in ("limit=5", "limit=3&status=completed", "limit=4&source=voice&status=completed"):
            got = [s for p in _all_pages(client, query) for s in p]
            want = expected if "status" not in query else [s for i, s in enumerate(expected) if int(s[2:], 16) % 10]
            assert got == want, query


def test_filters_by_source_status_and_date(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    may_first = int(datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp() * 1000)
    seed(redis, 100, start_ms=may_first)
    seed(redis, 30, start_ms=may_first + 86_400_000, offset=1000)
    with httpx.Client(base_url=start_console(console_settings()), timeout=10) as client:
        def get(query: str) -> dict[str, Any]:
            response = client.get(f"/api/recordings?limit=200&{query}", headers=BEARER)
            assert response.status_code == 200, response.text
            return dict(response.json())

        assert get("")["total"] == 130
        assert get("status=absent")["total"] == 13
        assert get("source=video")["total"] == 0
        both = get("source=voice&status=absent")
        assert len(both["recordings"]) == 13 and both["total"] is None
        assert all(r["status"] == "absent" for r in both["recordings"])
        assert get("from=2024-05-01&to=2024-05-01")["total"] == 100
        assert get("from=2024-05-02")["total"] == 30
        assert len(get("from=2024-05-02&status=absent")["recordings"]) == 3
        assert get("to=2024-04-30")["total"] == 0
        assert client.get("/api/recordings?status=lost", headers=BEARER).status_code == 400
        assert client.get("/api/recordings?from=yesterday", headers=BEARER).status_code == 400


def test_search_by_recording_call_conference_room_or_job(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    sids = seed(redis, 20)
    conference = sid("CF", 77)
    for recording in sids[:3]:
        redis.sadd(keys.related_key(conference), f"voice:{recording}")
    with httpx.Client(base_url=start_console(console_settings()), timeout=10) as client:
        def found(q: str, **extra: str) -> list[str]:
            body = client.get("/api/recordings", params={"q": q, **extra}, headers=BEARER).json()
            return [r["sid"] for r in body["recordings"]]

        assert found(sids[5]) == [sids[5]]
        assert found(sids[5].upper().replace("RE", "re", 1)) == [sids[5]]
        assert found(sid("CA", 7)) == [sids[7]]
        assert found(conference) == sids[:3]
        assert found(conference, status="absent") == [sids[0]]
        assert found(f"rr-voice-{sids[9]}-completed") == [sids[9]]
        assert found(sid("RM", 1)) == [] and found(sid("RE", 999)) == []
        body = client.get("/api/recordings", params={"q": "hello"}, headers=BEARER).json()
        assert body["recordings"] == [] and "Search takes a RecordingSid" in body["notes"][0]


def test_failures_are_grouped_by_cause_and_a_whole_cause_is_replayed_with_confirmation(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings(retry_max=5)
    recordings = seed(redis, 4)
    forbidden = [fail_job(redis, r, f"permanent: Twilio answered 403 (code 20403): /Recordings/{r}.json Forbidden") for r in recordings[:3]]
    unauthorised = fail_job(redis, recordings[3], "permanent: Twilio answered 401 (code 20003): Authenticate")
    client = sign_in(start_console(settings))

    body = client.get("/api/failures").json()
    assert body["total"] == 4 and [g["count"] for g in body["groups"]] == [3, 1]
    big = body["groups"][0]
    assert big["cause"] == "permanent: Twilio answered 403 (code 20403): /Recordings/RE….json Forbidden"
    assert "3" in client.get("/failures").text and big["cause_id"] in client.get("/failures").text

    confirm = client.get(f"/failures/{big['cause_id']}/replay")
    assert confirm.status_code == 200 and "Replay 3 jobs" in confirm.text
    assert all(r in confirm.text for r in recordings[:3])
    done = client.post(f"/failures/{big['cause_id']}/replay", data={"csrf_token": csrf_token(confirm.text), "next": "/failures"})
    assert done.status_code == 303 and done.headers["location"] == "/failures?notice=replayed&n=3"
    assert "Replayed 3 job(s)" in client.get(done.headers["location"]).text
    for job_id in forbidden:
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        assert job.get_status() == "queued" and job.retries_left == 5
    assert redis.lrange("rq:queue:recordings", 0, -1) == [j.encode() for j in reversed(forbidden)] or \
        sorted(redis.lrange("rq:queue:recordings", 0, -1)) == sorted(j.encode() for j in forbidden)
    timeline = [json.loads(e) for e in redis.lrange(keys.timeline_key("voice", recordings[0]), 0, -1)]
    assert timeline[-1]["kind"] == "replay" and timeline[-1]["by"] == USER and timeline[-1]["job_id"] == forbidden[0]

    # The one left, discarded through the JSON API with the session's CSRF token in a header.
    api = client.post(f"/api/jobs/{unauthorised}/discard", headers={"x-csrf-token": session_csrf(client)})
    assert api.status_code == 200 and api.json() == {"discarded": [unauthorised], "count": 1, "by": USER}
    assert not Job.exists(unauthorised, connection=redis)
    again = client.post(f"/api/jobs/{unauthorised}/discard", headers={"x-csrf-token": session_csrf(client)})
    assert again.status_code == 409
    assert client.get("/api/failures").json()["groups"] == []
    actions = client.get("/api/failures").json()["recent_actions"]
    assert [(a["action"], a["user"]) for a in actions] == [("discard", USER)] + [("replay", USER)] * 3
    assert "discarded by operator" in client.get(f"/recordings/voice/{recordings[3]}").text


def test_a_failed_recording_is_explained_and_replayed_to_success_without_a_browser(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    start_console: Callable[[Settings], str], standin: Any, redis: Redis,
) -> None:
    settings = pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_secret_key=SECRET_KEY)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.wav", 403, times=1)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    client = sign_in(start_console(settings))
    listing = client.get("/recordings", params={"q": recording.call_sid}).text
    assert recording.sid in listing and "job failed" in listing
    page = client.get(f"/recordings/voice/{recording.sid}").text
    assert "Job failed: permanent: media answered 403" in page and "Fix the cause, then replay" in page
    job_id = f"rr-voice-{recording.sid}-completed"
    confirm = client.get(f"/jobs/{job_id}/replay", params={"next": f"/recordings/voice/{recording.sid}"})
    done = client.post(f"/jobs/{job_id}/replay", data={"csrf_token": csrf_token(confirm.text), "next": f"/recordings/voice/{recording.sid}"})
    assert done.headers["location"] == f"/recordings/voice/{recording.sid}?notice=replayed&n=1"
    drain(settings)
    detail = client.get(f"/api/recordings/voice/{recording.sid}").json()
    assert detail["fields"]["archived_at"] and detail["fields"]["media_path"].endswith(f"{recording.sid}.wav")
    assert [e["kind"] for e in detail["timeline"]][-2:] == ["replay", "job"] and detail["timeline"][-1]["outcome"] == "done"
    assert detail["archived_after_seconds"] is not None and not any(j["failed"] for j in detail["jobs"])
    # A second replay of the same job is refused: it is no longer failed.
    stale = client.post(f"/jobs/{job_id}/replay", data={"csrf_token": csrf_token(confirm.text)})
    assert "notice=not_failed" in stale.headers["location"]


def test_overview_reads_every_counter(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    now = time.time()
    redis.hset(stats.minute("callbacks", now), mapping={"voice|completed|queued": 4, "voice|-|rejected_signature": 2})
    redis.hset(stats.minute("callbacks", now - 600), mapping={"voice|completed|duplicate": 3})
    redis.hset(stats.CALLBACKS, mapping={"voice|completed|queued": 40, "voice|-|rejected_signature": 2})
    redis.hset(stats.minute("signature_failures", now), mapping={"signature mismatch": 2})
    redis.hset(stats.SIGNATURE_FAILURES, mapping={"signature mismatch": 9, "missing header": 1})
    redis.hset(stats.SPOOL, mapping={"receiver-a": 5})
    sources = {"voice": {"seen": 10, "missing": 2, "queued": 2, "duplicates": 0, "accounts": 1, "errors": ["AC…: Twilio answered 500"]}}
    redis.hset(keys.RECONCILE_LAST, mapping={"at": f"{now - 120:.3f}", "seen": 10, "missing": 2, "queued": 2, "duplicates": 0,
                                            "errors": 1, "sources": json.dumps(sources), "problems": json.dumps(["media: not configured"])})
    fail_job(redis, sid("RE", 1), "transient: network: ReadTimeout")
    client = sign_in(start_console(console_settings()))
    body = client.get("/api/overview").json()
    assert body["callbacks_last_5_minutes"] == 6
    rates = {(r["source"], r["verdict"]): r for r in body["callbacks"]}
    assert rates[("voice", "queued")]["per_minute"][-1] == 4 and rates[("voice", "duplicate")]["last_hour"] == 3
    assert body["signature_failures"][0] == {"reason": "signature mismatch", "last_hour": 2, "total": 9}
    assert body["spool_depth"] == 5 and body["reconcile"]["missing"] == 2
    assert body["queue"]["failed"] == 1 and body["failed_last_hour"] == 1 and body["workers_alive"] == 0
    page = client.get("/").text
    assert "signature mismatch" in page and "receiver-a" in page and "2 missing" in page
    assert "AC…: Twilio answered 500" in page and "media: not configured" in page


def test_metrics_come_from_redis_so_every_process_counts(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    redis.hset(stats.CALLBACKS, mapping={"voice|completed|queued": 5, "voice|-|rejected_signature": 1})
    redis.hset(stats.SIGNATURE_FAILURES, mapping={"signature mismatch": 1})
    redis.hset(stats.JOB_SECONDS, mapping={"voice|done|0.5": 3, "voice|done|1.0": 1, "voice|done|sum": 2.5})
    redis.hset(stats.TWILIO_RESPONSES, mapping={"200": 8, "429": 1})
    redis.hset(metrics.ENQUEUE_SECONDS, mapping={"voice|0.001": 3, "voice|0.01": 1, "voice|sum": 0.013})
    redis.hset(stats.SPOOL, mapping={"receiver-a": 2})
    redis.hset(stats.SPOOL, mapping={"receiver-gone": 5})  # restarted: its successor drains that spool
    redis.zadd(stats.RECEIVERS_SEEN, {"receiver-a": time.time(), "receiver-gone": time.time() - 600})
    redis.hset(keys.RECONCILE_LAST, mapping={"at": 1700000000, "seen": 3, "missing": 1, "sources": json.dumps({"voice": {"missing": 1}})})
    seed(redis, 12)
    fail_job(redis, sid("RE", 1), "transient: network: ReadTimeout")
    settings = console_settings()
    # Two console processes (here: apps) read the same totals: nothing is kept in process memory.
    for base in (start_console(settings), start_console(settings)):
        text = httpx.get(f"{base}/metrics", headers=BEARER).text
        for line in (
            'recording_receiver_callbacks_total{source="voice",status="completed",verdict="queued"} 5.0',
            'recording_receiver_signature_failures_total{reason="signature mismatch"} 1.0',
            'recording_receiver_job_duration_seconds_count{outcome="done",source="voice"} 4.0',
            'recording_receiver_job_duration_seconds_sum{outcome="done",source="voice"} 2.5',
            'recording_receiver_twilio_api_responses_total{status="429"} 1.0',
            'recording_receiver_enqueue_seconds_bucket{le="0.001",source="voice"} 3.0',
            'recording_receiver_enqueue_seconds_bucket{le="+Inf",source="voice"} 4.0',
            'recording_receiver_queue_jobs{queue="recordings",state="failed"} 1.0',
            'recording_receiver_recordings{status="absent"} 2.0',
            'recording_receiver_spool_depth{receiver="receiver-a"} 2.0',
            'recording_receiver_reconcile_last_pass_missing{source="voice"} 1.0',
            'recording_receiver_reconcile_last_pass_recordings{kind="missing"} 1.0',
            "recording_receiver_redis_up 1.0",
            "recording_receiver_receivers_alive 1.0",
        ):
            assert line in text, line
        assert "receiver-gone" not in text


def test_workers_page_lists_a_live_worker(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis_url: str,
) -> None:
    settings = console_settings()
    env = dict(os.environ, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, LOG_FORMAT="json", WORKER_THREADS="2")
    worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker", "--no-scheduler"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = sign_in(start_console(settings))

        def registered() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = client.get("/api/workers").json()["workers"]
            return found if len(found) == 2 else []

        workers = wait_for(registered, timeout=30, what="the worker's two threads to register")
        # A worker process may run several RQ workers (threads); each is listed, under its process.
        assert {w["pid"] for w in workers} == {worker.pid} and all(w["queues"] == ["recordings"] for w in workers)
        page = client.get("/workers").text
        assert f"{len(workers)} alive in 1 process" in page and workers[0]["name"] in page
        overview = client.get("/api/overview").json()
        assert overview["workers_alive"] == len(workers) and overview["worker_processes"] == 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_redis_down_is_a_clear_503_and_metrics_say_so(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis_proc: RedisProcess,
) -> None:
    client = sign_in(start_console(console_settings()))
    redis_proc.stop()
    try:
        page = client.get("/recordings")
        assert page.status_code == 503 and "Redis is unreachable" in page.text
        assert client.get("/api/overview").status_code == 503
        # Sessions live in Redis, so a session cannot be vouched for now; the scraper's token still can.
        assert "recording_receiver_redis_up 0.0" in client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
    finally:
        redis_proc.start()
    assert client.get("/recordings").status_code == 200


def test_a_recording_no_worker_has_touched_yet_is_shown_as_waiting(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    # What the receiver alone writes on a first callback: the index entry and a timeline entry.
    recording = sid("RE", 42)
    redis.zadd(keys.RECORDINGS_INDEX, {f"voice:{recording}": int(time.time() * 1000)})
    redis.rpush(keys.timeline_key("voice", recording), json.dumps({"at": time.time(), "kind": "callback", "status": "completed",
                                                                    "verdict": "queued", "job_id": f"rr-voice-{recording}-completed"}))
    client = sign_in(start_console(console_settings()))
    assert "not processed yet" in client.get("/recordings").text
    page = client.get(f"/recordings/voice/{recording}")
    assert page.status_code == 200 and "callback received" in page.text and "No worker has processed this recording yet" in page.text


def test_unknown_or_malformed_recordings_are_404(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    client = sign_in(start_console(console_settings()))
    assert client.get(f"/recordings/voice/{sid('RE', 5)}").status_code == 404
    assert client.get("/recordings/voice/not-a-sid").status_code == 404
    assert client.get(f"/recordings/fax/{sid('RE', 5)}").status_code == 404
    assert client.get(f"/api/recordings/voice/{sid('RE', 5)}").status_code == 404
    assert client.get("/failures/000000000000").status_code == 404
    assert client.get("/jobs/rr-voice-x/replay").status_code == 409  # asks nothing: the job is not failed
    assert client.get("/jobs/<script>/replay").status_code == 404
