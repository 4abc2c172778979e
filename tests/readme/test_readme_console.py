"""The README's operations console: what the pages show, fed by the real receiver, workers and reconciler."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq.job import Job

from console.auth import Authenticator
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_sources_pipeline import video_callback
from tests.e2e.test_voice_pipeline import callback
from tests.support import readme
from tests.support.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER, csrf_token, fail_job, seed, sign_in
from tests.support.servers import answers_200, free_port, wait_for
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params
from workers.reconcile import reconciler

ROOT = readme.ROOT
BEARER = {"authorization": f"Bearer {TOKEN}"}
PAGES = ("/", "/recordings", "/failures", "/workers")


@pytest.fixture
def console_pipeline(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    start_console: Callable[[Settings], str],
) -> tuple[Settings, Receiver, str]:
    settings = pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_token=TOKEN, admin_secret_key=SECRET_KEY)
    return settings, start_receiver(settings), start_console(settings)


def test_recordings_are_found_by_room_sid_and_call_sid_as_soon_as_the_callback_is_queued(
    console_pipeline: tuple[Settings, Receiver, str], standin: Any,
) -> None:
    _, receiver, console = console_pipeline
    rec = standin.state.add_video(account_sid=ACCOUNT_SID)
    voice = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("video"), video_callback(rec)).status_code == 204
    assert receiver.post(receiver.url(), callback(voice)).status_code == 204
    with httpx.Client(base_url=console, headers=BEARER, timeout=10) as client:
        def found(q: str) -> list[str]:
            return [r["sid"] for r in client.get("/api/recordings", params={"q": q}).json()["recordings"]]

        assert found(rec.room_sid) == [rec.sid]  # no worker has run: found from what the receiver wrote
        assert found(voice.call_sid) == [voice.sid]
        assert found(rec.sid) == [rec.sid]


def test_a_recordings_timeline_shows_callbacks_with_verdicts_job_attempts_reconciler_finds_and_replays(
    console_pipeline: tuple[Settings, Receiver, str], standin: Any, redis: Redis,
) -> None:
    settings, receiver, console = console_pipeline
    called = standin.state.add_voice(account_sid=ACCOUNT_SID)
    lost = standin.state.add_voice(account_sid=ACCOUNT_SID)  # its callback never comes
    standin.state.add_fault("GET", f"{called.sid}.wav", 403, times=1)
    for status in ("in-progress", "completed", "completed"):
        assert receiver.post(receiver.url(), callback(called, status)).status_code == 204
    drain(settings)
    assert reconciler.run_once(settings, sources=["voice"]).ok
    drain(settings)
    client = sign_in(console)
    job_id = f"rr-voice-{called.sid}-completed"
    confirm = client.get(f"/jobs/{job_id}/replay")
    assert client.post(f"/jobs/{job_id}/replay", data={"csrf_token": csrf_token(confirm.text)}).status_code == 303
    drain(settings)

    detail = client.get(f"/api/recordings/voice/{called.sid}").json()
    entries = [(e["kind"], e["status"], e["verdict"] or e["outcome"]) for e in detail["timeline"]]
    callbacks = [e for e in entries if e[0] == "callback"]
    assert callbacks == [("callback", "in-progress", "queued"), ("callback", "completed", "queued"),
                         ("callback", "completed", "duplicate")]
    jobs = [e for e in detail["timeline"] if e["kind"] == "job"]
    assert all(j["seconds"] is not None for j in jobs), jobs  # every attempt with its duration
    failed = [j for j in jobs if j["error"]]
    assert failed and "403" in failed[0]["error"]  # and its error
    assert [e["by"] for e in detail["timeline"] if e["kind"] == "replay"] == [USER]
    assert jobs[-1]["outcome"] == "done" and detail["fields"]["media_path"].endswith(f"{called.sid}.wav")
    page = client.get(f"/recordings/voice/{called.sid}").text
    for words in ("callback received", "duplicate", "job attempt", f"replayed by {USER}", "403", "Where the media is",
                  detail["fields"]["media_path"]):
        assert words in page, words
    # The recording no callback brought: found by the reconciler, then processed.
    found = client.get(f"/api/recordings/voice/{lost.sid}").json()
    assert [e["kind"] for e in found["timeline"]][:1] == ["reconciler"] and found["fields"]["archived_at"]
    assert "found by the reconciler" in client.get(f"/recordings/voice/{lost.sid}").text


def test_the_overview_shows_queue_depth_and_the_oldest_waiting_job(
    console_pipeline: tuple[Settings, Receiver, str], redis: Redis,
) -> None:
    _, receiver, console = console_pipeline
    for _ in range(3):
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", new_sid("RE"))).status_code == 204
    client = sign_in(console)
    queue = client.get("/api/overview").json()["queue"]
    assert queue["waiting"] == 3 and queue["oldest_waiting_age"] is not None and queue["oldest_waiting_age"] >= 0
    assert "oldest waiting" in client.get("/").text


def test_a_whole_cause_is_discarded_after_confirmation_and_logged_with_who_did_it(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    recordings = seed(redis, 3)
    jobs = [fail_job(redis, r, "permanent: Twilio answered 404 (code 20404): gone") for r in recordings[:2]]
    other = fail_job(redis, recordings[2], "permanent: Twilio answered 401 (code 20003): Authenticate")
    port, log = free_port(), tmp_path / "console.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "ADMIN_", "LOG_"))}
    env.update(REDIS_URL=redis_url, ADMIN_USERNAME=USER, ADMIN_PASSWORD=PASSWORD, ADMIN_PORT=str(port), LOG_FORMAT="json")
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("recording-receiver")), "admin"], env=env, cwd=ROOT,
                                stderr=out, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers_200(base + "/healthz"), timeout=30, what="the console")
        client = sign_in(base)
        [group] = [g for g in client.get("/api/failures").json()["groups"] if g["count"] == 2]
        confirm = client.get(f"/failures/{group['cause_id']}/discard")
        assert confirm.status_code == 200 and "Discard 2 jobs" in confirm.text
        assert all(Job.exists(j, connection=redis) for j in jobs), "asking is not doing"
        done = client.post(f"/failures/{group['cause_id']}/discard", data={"csrf_token": csrf_token(confirm.text)})
        assert done.status_code == 303 and "notice=discarded&n=2" in done.headers["location"]
        assert not any(Job.exists(j, connection=redis) for j in jobs) and Job.exists(other, connection=redis)
        actions = client.get("/api/failures").json()["recent_actions"]
        assert sorted((a["action"], a["user"], a["job_id"]) for a in actions) == sorted(("discard", USER, j) for j in jobs)
        lines = wait_for(lambda: [json.loads(ln) for ln in log.read_text().splitlines() if '"console action"' in ln],
                         what="the audit log lines")
        assert sorted((e["user"], e["action"], e["job_id"]) for e in lines) == sorted((USER, "discard", j) for j in jobs)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_pages_are_server_rendered_without_javascript(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    sids = seed(redis, 3)
    fail_job(redis, sids[0], "transient: network: ReadTimeout")
    base = start_console(console_settings())
    client = sign_in(base)
    cause = client.get("/api/failures").json()["groups"][0]["cause_id"]
    pages = [(client, p) for p in (*PAGES, f"/recordings/voice/{sids[0]}", f"/failures/{cause}", f"/failures/{cause}/replay")]
    with httpx.Client(base_url=base) as anonymous:
        for who, path in [*pages, (anonymous, "/login")]:
            response = who.get(path)
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), path
            assert not re.search(r"<script|javascript:|\son[a-z]+\s*=", response.text, flags=re.I), path
            assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none' covers it
    static = ROOT / "console" / "static"
    assert [p.suffix for p in static.iterdir()] == [".css"]


def test_metrics_add_up_what_every_receiver_and_worker_process_did(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = pipeline_settings()
    receivers = [start_receiver(settings), start_receiver(settings)]
    for index in range(8):
        receiver = receivers[index % 2]
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", new_sid("RE"))).status_code == 204
    assert receivers[1].post(receivers[1].url(), voice_params(ACCOUNT_SID, "absent", new_sid("RE")), token="x").status_code == 403
    # Two worker processes of their own (not this one), each taking what it finds.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_", "LOG_"))}
    env.update(REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               LOG_FORMAT="json", DATA_DIR=str(settings.data_dir), RECONCILE_INTERVAL_SECONDS="0")
    command = [str(Path(sys.executable).with_name("recording-receiver")), "worker", "--burst", "--no-scheduler"]
    workers = [subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [w.wait(timeout=90) for w in workers] == [0, 0]
    expected = (
        'recording_receiver_callbacks_total{source="voice",status="absent",verdict="queued"} 8.0',
        'recording_receiver_callbacks_total{source="voice",status="-",verdict="rejected_signature"} 1.0',
        'recording_receiver_job_duration_seconds_count{outcome="done",source="voice"} 8.0',
        'recording_receiver_recordings{status="absent"} 8.0',
    )
    consoles = [start_console(console_settings()), start_console(console_settings())]

    def missing() -> list[str]:
        text = httpx.get(f"{consoles[0]}/metrics", headers=BEARER, timeout=10).text
        return [line for line in expected if line not in text]

    # Receivers write their counts every 5 s: wait for the next write, no longer.
    wait_for(lambda: not missing(), timeout=20, what="the receivers' counts in /metrics")
    for base in consoles:
        text = httpx.get(f"{base}/metrics", headers=BEARER, timeout=10).text
        for line in expected:
            assert line in text, line


def test_the_readme_lists_every_metric_with_its_type_and_labels(scraped: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    listed = {row[0].strip("`"): (row[1], set(readme.codes_in(row[2]))) for row in readme.table("| metric | type | labels |")}
    exposed: dict[str, tuple[str, set[str]]] = {}
    for family in text_string_to_metric_families(scraped):
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for sample in family.samples for k in sample.labels if k != "le"}
        exposed[name] = (family.type, labels)
    assert listed == exposed
    for path in ("deploy/prometheus/alerts.yml", "deploy/grafana/recording-receiver.json"):
        assert f"`{path}`" in readme.prose() and (ROOT / path).is_file()


# -- sign-in settings ----------------------------------------------------------------------------

def test_without_admin_secret_key_sessions_are_signed_with_a_key_random_per_start(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    settings = console_settings(admin_secret_key=None)
    first, second = start_console(settings), start_console(settings)
    client = sign_in(first)
    assert client.get("/").status_code == 200
    cookies = dict(client.cookies)
    with httpx.Client(base_url=second, cookies=cookies) as other:
        assert other.get("/").status_code == 303  # the other start's key does not know this session
    stable = console_settings()
    issued, _ = Authenticator(stable, open_access=False).issue(USER)
    assert Authenticator(stable, open_access=False).session(issued) is not None  # with ADMIN_SECRET_KEY it carries over


def test_admin_secure_cookies_marks_cookies_secure_even_over_plain_http(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    plain = httpx.get(start_console(console_settings()) + "/login")
    assert "Secure" not in plain.headers["set-cookie"]
    forced = start_console(console_settings(admin_secure_cookies=True))
    form = httpx.get(forced + "/login")
    assert "; Secure" in form.headers["set-cookie"]
    login = httpx.post(forced + "/login", data={"username": USER, "password": PASSWORD, "csrf_token": csrf_token(form.text)},
                       headers={"cookie": form.headers["set-cookie"].split(";")[0]})
    assert login.status_code == 303
    session = next(c for c in login.headers.get_list("set-cookie") if c.startswith("rr_console_session="))
    assert "; Secure" in session


def test_a_console_login_lasts_admin_session_hours(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    base = start_console(console_settings(admin_session_hours=3))
    form = httpx.get(base + "/login")
    login = httpx.post(base + "/login", data={"username": USER, "password": PASSWORD, "csrf_token": csrf_token(form.text)},
                       headers={"cookie": form.headers["set-cookie"].split(";")[0]})
    session = next(c for c in login.headers.get_list("set-cookie") if c.startswith("rr_console_session="))
    assert "Max-Age=10800" in session
    # The signature, not only the browser, ends it: a session older than its hours is refused.
    brief = Authenticator(console_settings(admin_session_hours=1 / 3600), open_access=False)
    cookie, _ = brief.issue(USER)
    assert brief.session(cookie) is not None
    wait_for(lambda: brief.session(cookie) is None, timeout=10, what="the one-second session to lapse")


def test_an_archived_recording_s_page_plays_and_offers_its_media_to_signed_in_operators_only(
    console_pipeline: tuple[Settings, Receiver, str], standin: Any,
) -> None:
    settings, receiver, console = console_pipeline
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, duration=42, channels=2)
    receiver.post(receiver.url(), callback(recording, "completed"))
    drain(settings)
    assert "plays its media" in readme.prose() and "`ADMIN_MEDIA_LINK_SECONDS`" in readme.prose()
    client = sign_in(console)
    page = client.get(f"/recordings/voice/{recording.sid}").text
    media = f"/recordings/voice/{recording.sid}/media"
    assert f'<audio controls preload="metadata" src="{media}">' in page and f'href="{media}?download=1" download' in page
    twilio = page.split('id="twilio-metadata"')[1].split("</section>")[0]
    created = recording.date_created.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert "42 s" in twilio and "<th>Channels</th><td class=\"mono\">2</td>" in twilio and created in twilio
    served = (settings.storage_path / "voice" / ACCOUNT_SID / f"{recording.sid}.wav").read_bytes()
    part = client.get(media, headers={"range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == served[:4] == b"RIFF"
    assert client.get(media, headers={"range": "bytes=0-3,8-11"}).status_code == 416
    assert client.get(f"{media}?download=1").headers["content-disposition"].startswith("attachment")
    with httpx.Client(base_url=console, timeout=10) as anonymous:
        refused = anonymous.get(media)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login") and b"RIFF" not in refused.content
