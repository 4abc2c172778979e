"""The README's "What happens to a callback" and Settings, over real HTTP: log lines, one round trip, the
ledger, the queue name, the spool, forward-only states, REST credentials."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from receiver.app.spool import Spool
from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_sources_pipeline import legacy_callback, media_callback
from tests.e2e.test_voice_pipeline import callback
from tests.support import readme
from tests.support.rq_jobs import failure_trace
from tests.support.servers import RedisProcess, answers_200, free_port, wait_for
from tests.support.twilio_signing import sign
from tests.unit.receiver.app.test_receiver_voice import voice
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params
from workers.jobs.catalog import Catalog

ROOT = readme.ROOT
PUBLIC = "https://hooks.example.com"


# -- step 1 and 2: refused and ignored callbacks are logged with the reason -------------------------

@contextlib.contextmanager
def serve(redis_url: str, tmp_path: Path, **extra: str) -> Iterator[tuple[str, Path]]:
    """`recording-receiver serve` in its own process (structlog binds a logger's level and output on
    first use, so a log is only seen whole from a process of its own); yields its URL and log file."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_", "PUBLIC_", "LOG_"))}
    env.update(REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC,
               DATA_DIR=str(tmp_path / "data"), LOG_FORMAT="json", **extra)
    log = tmp_path / "receiver.log"
    command = [str(Path(sys.executable).with_name("recording-receiver")), "serve", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stderr=out, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers_200(base + "/healthz"), timeout=30, what="the receiver")
        yield base, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _entries(log: Path, event: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if f'"event": "{event}"' in line]


def test_a_refused_callback_gets_403_and_a_log_line_naming_what_most_likely_differed(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    with serve(redis_url, tmp_path) as (base, log):
        url, public = base + "/twilio/recordings/voice", PUBLIC + "/twilio/recordings/voice"
        params = voice()
        # (what the request carries, what the log line must say first)
        cases = [
            ({}, "", "missing X-Twilio-Signature header", None),
            ({"X-Twilio-Signature": sign(AUTH_TOKEN, public.replace("https:", "http:"), params.items())}, "",
             "signature does not match", "scheme: Twilio signed http://hooks.example.com/"),
            ({"X-Twilio-Signature": sign(AUTH_TOKEN, "https://internal.example/twilio/recordings/voice", params.items()),
              "Host": "internal.example"}, "", "signature does not match", "host: Twilio signed https://internal.example/"),
            ({"X-Twilio-Signature": sign(AUTH_TOKEN, "https://hooks.example.com:8443/twilio/recordings/voice", params.items()),
              "Host": "10.0.0.5:8443"}, "", "signature does not match", "port: Twilio signed https://hooks.example.com:8443/"),
            ({"X-Twilio-Signature": sign(AUTH_TOKEN, public + "/", params.items())}, "",
             "signature does not match", "path: Twilio signed"),
            ({"X-Twilio-Signature": sign(AUTH_TOKEN, public, params.items())}, "?tag=1",
             "signature does not match", "query: Twilio signed"),
            ({"X-Twilio-Signature": sign(AUTH_TOKEN, public, [])}, "", "signature does not match", "parameter set: "),
            ({"X-Twilio-Signature": sign("another-token", public, params.items())}, "",
             "signature does not match", "token or parameters"),
        ]
        for headers, query, _, _ in cases:
            assert httpx.post(url + query, data=params, headers=headers).status_code == 403
        paused = voice("paused", sid="RE" + "e" * 32)
        assert httpx.post(url, data=paused, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, public, paused.items())}).status_code == 204
        refused = wait_for(lambda: len(_entries(log, "callback rejected")) == len(cases) and _entries(log, "callback rejected"),
                           what="a refusal line per request")
        ignored = wait_for(lambda: _entries(log, "callback ignored"), what="the ignored line")
    for entry, (_, _, reason, likely) in zip(refused, cases, strict=False):
        assert (entry["level"], entry["status"], entry["reason"]) == ("warning", 403, reason)
        if likely:
            assert entry["likely_difference"].startswith(likely), entry
    assert ignored[0]["sid"] == "RE" + "e" * 32 and "paused" in ignored[0]["reason"]
    assert redis.llen("rq:queue:recordings") == 0
    assert AUTH_TOKEN not in log.read_text()


# -- step 3: one Lua script, one round trip; the ledger; the queue ---------------------------------

def test_a_callback_is_one_script_call_in_one_round_trip(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    receiver = start_receiver(make_settings())
    assert receiver.post(receiver.url(), voice(sid="RE" + "1" * 32)).status_code == 204  # loads the script
    sid = "RE" + "2" * 32
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        with Redis.from_url(receiver.settings.redis_url or "").monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                seen.append(command)
                if done.is_set() and command["command"] == "ECHO readme-stop":
                    return

    ready = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(10)
    assert receiver.post(receiver.url(), voice(sid=sid)).status_code == 204
    done.set()
    wait_for(lambda: redis.echo("readme-stop") and not watcher.is_alive(), what="the monitor to see our marker")
    # Commands run by the script itself show as "lua"; the receiver sent one command for the callback.
    sent = [c for c in seen if c.get("client_type") != "lua" and sid in c["command"]]
    assert [c["command"].split()[0] for c in sent] == ["EVALSHA"], sent
    inside = [c["command"].split()[0] for c in seen if c.get("client_type") == "lua" and sid in c["command"]]
    assert {"SET", "HSET", "RPUSH"} <= set(inside), inside  # ledger, RQ job, timeline: all in that one call
    assert Queue("recordings", connection=redis, serializer=JSONSerializer).job_ids[-1] == f"rr-voice-{sid}-completed"


def test_the_ledger_remembers_a_recording_and_status_for_ledger_ttl_seconds(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    receiver = start_receiver(make_settings(ledger_ttl_seconds=12_345))
    assert receiver.post(receiver.url(), voice()).status_code == 204
    ttl = redis.ttl(keys.ledger_key_of("voice", voice()["RecordingSid"], "completed"))
    assert 12_300 < ttl <= 12_345


def test_queue_name_is_the_rq_queue_callbacks_go_to_and_workers_take_from(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    settings = make_settings(queue_name="calls-elsewhere")
    receiver = start_receiver(settings)
    sid = new_sid("RE")
    assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", sid)).status_code == 204
    assert redis.lrange("rq:queue:calls-elsewhere", 0, -1) == [f"rr-voice-{sid}-absent".encode()]
    assert redis.llen("rq:queue:recordings") == 0
    drain(settings)
    assert Catalog(redis).get("voice", sid)["status"] == "absent"


# -- the spool ----------------------------------------------------------------------------------



def test_the_spool_is_an_fsynced_sqlite_wal_file_in_spool_dir(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    tmp_path: Path,
) -> None:
    spool_dir = tmp_path / "my-spool"
    receiver = start_receiver(make_settings(redis_url=own_redis.url, spool_dir=spool_dir))
    own_redis.stop()
    sid = new_sid("RE")
    assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", sid)).status_code == 204
    path = spool_dir / "events.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        [(payload,)] = db.execute("SELECT payload FROM events").fetchall()
    assert json.loads(payload)["sid"] == sid
    # fsync'd: every commit is synced (FULL), so an answered event survives a power cut.
    with contextlib.closing(Spool(path)) as spool:
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    own_redis.start()


def test_receivers_on_one_host_share_the_spool_safely(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    tmp_path: Path,
) -> None:
    shared = tmp_path / "spool"
    receivers = [start_receiver(make_settings(redis_url=own_redis.url, spool_dir=shared)) for _ in range(2)]
    own_redis.stop()
    sids = [new_sid("RE") for _ in range(30)]
    for index, sid in enumerate(sids):
        receiver = receivers[index % 2]
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", sid)).status_code == 204
    own_redis.start()
    client = own_redis.client()
    queued = wait_for(lambda: client.llen("rq:queue:recordings") == len(sids) and client.lrange("rq:queue:recordings", 0, -1),
                      timeout=30, what="both receivers' spooled events")
    # Each once, in the order they were accepted; nothing left behind in the shared file.
    assert [q.decode() for q in queued] == [f"rr-voice-{sid}-absent" for sid in sids]
    wait_for(lambda: all(httpx.get(f"{r.base_url}/readyz").json()["spool"] == 0 for r in receivers), what="empty spools")


# -- step 4: the state only moves forward; absent and failed say why -------------------------------

@pytest.mark.parametrize("final", ["absent", "failed"])
def test_a_late_in_progress_never_undoes_absent_or_failed(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis,
    final: str,
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, status=final)
    receiver.post(receiver.url(), callback(recording, final, ErrorCode="16101" if final == "absent" else "16104"))
    drain(settings)
    receiver.post(receiver.url(), callback(recording, "in-progress"))
    drain(settings)
    assert Catalog(redis).get("voice", recording.sid)["status"] == final
    assert standin.state.requests() == []


def test_absent_16101_is_recorded_as_too_short(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, status="absent")
    receiver.post(receiver.url(), callback(recording, "absent", ErrorCode="16101"))
    drain(settings)
    state = Catalog(redis).get("voice", recording.sid)
    assert state["error_code"] == "16101" and "too short" in state["error_meaning"]


def test_legacy_media_comes_from_the_mp3_when_media_format_is_mp3(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(media_format="mp3")
    receiver = start_receiver(settings)
    rec = standin.state.add_legacy(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("legacy"), legacy_callback(rec)).status_code == 204
    drain(settings)
    media = settings.storage_path / "legacy" / ACCOUNT_SID / f"{rec.sid}.mp3"
    assert media.read_bytes() == standin.state.media_bytes(rec, "mp3")
    # Metadata and media are fetched concurrently: compared sorted, never in order.
    assert sorted(r["path"].rsplit("/", 1)[1] for r in standin.state.requests("GET", rec.sid)) == [f"{rec.sid}.mp3", f"{rec.sid}.xml"]


# -- REST credentials: the auth token unless an API key is set; subaccounts' own ----------------

def test_rest_calls_use_the_api_key_when_one_is_set(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    key = standin.state.add_api_key(ACCOUNT_SID)
    settings = pipeline_settings(twilio_api_key_sid=key.sid, twilio_api_key_secret=key.secret)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    # Callbacks are still signed with the auth token.
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")
    assert {r["username"] for r in standin.state.requests()} == {key.sid}


def test_a_subaccount_signs_with_its_own_tokens_and_calls_rest_with_its_own_key(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis,
    tmp_path: Path,
) -> None:
    sub = standin.state.add_account(sid="AC" + "6" * 32, auth_token="sub-primary")
    key = standin.state.add_api_key(sub.sid)
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({sub.sid: {"auth_token": "sub-primary", "auth_token_secondary": "sub-secondary",
                                              "api_key_sid": key.sid, "api_key_secret": key.secret}}))
    settings = pipeline_settings(twilio_accounts_file=accounts)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=sub.sid)
    params = {**callback(recording), "AccountSid": sub.sid,
              "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{sub.sid}/Recordings/{recording.sid}"}
    assert receiver.post(receiver.url(), params, token=AUTH_TOKEN).status_code == 403  # not the main account's token
    assert receiver.post(receiver.url(), params, token="sub-secondary").status_code == 204
    drain(settings)
    media = settings.storage_path / "voice" / sub.sid / f"{recording.sid}.wav"
    assert media.read_bytes() == standin.state.media_bytes(recording, "wav")
    assert {r["username"] for r in standin.state.requests()} == {key.sid}


def test_media_whose_size_is_not_what_twilio_reported_is_never_put_in_place(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_max=1)
    receiver = start_receiver(settings)
    served = len(standin.state.media_bytes(standin.state.add_media(account_sid=ACCOUNT_SID), "mp4"))
    rec = standin.state.add_media(account_sid=ACCOUNT_SID, media_size=served + 1)  # metadata says one byte more
    assert receiver.post(receiver.url("media"), media_callback(rec)).status_code == 204
    drain(settings)
    job = Job.fetch(f"rr-media-{rec.sid}-completed", connection=redis, serializer=JSONSerializer)
    assert failure_trace(job).strip().splitlines()[-1].endswith(f"media size {served} differs from the {served + 1} bytes Twilio reported")
    folder = settings.storage_path / "media" / ACCOUNT_SID
    # Neither the media, nor a commit record, nor a temp file of it.
    assert (list(folder.glob(f"*{rec.sid}*")) if folder.exists() else []) == []
    assert not Catalog(redis).get("media", rec.sid).get("archived_at")
