"""The public receiver on the voice route: signatures, parsing, dedupe, bad input — over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from receiver.kernel import stats
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, SECONDARY_TOKEN, Receiver
from tests.support.paths import REPO_ROOT
from tests.support.servers import answers_200, free_port, wait_for
from tests.support.twilio_signing import sign
from workers.commands.settings import Settings

ROOT = REPO_ROOT

RE = "RE" + "a" * 32
CA = "CA" + "b" * 32


def voice(status: str = "completed", sid: str = RE, **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID, "CallSid": CA, "RecordingSid": sid, "RecordingStatus": status,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
        "RecordingDuration": "12", "RecordingChannels": "1", "RecordingSource": "OutboundAPI",
        "RecordingStartTime": "Mon, 22 Aug 2022 16:36:22 +0000", "RecordingTrack": "both",
    }
    params.update(extra)
    return params


def queued_payloads(redis: Redis) -> list[dict[str, object]]:
    queue = Queue("recordings", connection=redis, serializer=JSONSerializer)
    return [job.args[0] for job in queue.get_jobs()]


@pytest.fixture
def receiver(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]
) -> Receiver:
    return start_receiver(make_settings(redis_pipe=getattr(request, "param", "fast")))


# The core cases on both transports (REDIS_PIPE): the stock one must keep every promise too.
BOTH_PIPES = pytest.mark.parametrize("receiver", ["fast", "stock"], indirect=True)


@BOTH_PIPES
def test_independently_signed_callback_is_queued_once_as_an_rq_job(receiver: Receiver, redis: Redis) -> None:
    response = receiver.post(receiver.url(), voice())
    assert response.status_code == 204
    assert "content-length" not in response.headers  # RFC 9110: never on a 204
    payloads = queued_payloads(redis)
    assert len(payloads) == 1
    assert payloads[0]["sid"] == RE and payloads[0]["status"] == "completed" and payloads[0]["source"] == "voice"
    assert payloads[0]["related"] == {"call_sid": CA}
    # The job is an RQ job RQ itself can load: JSON data naming the function by its path.
    job = Job.fetch(f"rr-voice-{RE}-completed", connection=redis, serializer=JSONSerializer)
    assert (job.func_name, job.origin, job.get_status()) == ("workers.jobs.process_recording", "recordings", "queued")
    assert job.retries_left == 8 and job.timeout == 900


@BOTH_PIPES
def test_repeated_callback_answers_204_and_queues_nothing_more(receiver: Receiver, redis: Redis) -> None:
    for _ in range(3):
        assert receiver.post(receiver.url(), voice()).status_code == 204
    assert len(queued_payloads(redis)) == 1
    # A different status of the same recording is a different event.
    assert receiver.post(receiver.url(), voice("in-progress")).status_code == 204
    assert len(queued_payloads(redis)) == 2


def test_unsigned_or_tampered_callbacks_get_403_and_queue_nothing(receiver: Receiver, redis: Redis) -> None:
    url = receiver.url()
    unsigned = httpx.post(url, data=voice())
    assert unsigned.status_code == 403
    good = sign(AUTH_TOKEN, url, voice().items())
    tampered = httpx.post(url, data=voice(RecordingDuration="13"), headers={"X-Twilio-Signature": good})
    assert tampered.status_code == 403
    extra_param = httpx.post(url, data=voice(Extra="1"), headers={"X-Twilio-Signature": good})
    assert extra_param.status_code == 403
    wrong_token = receiver.post(url, voice(), token="not-the-token")
    assert wrong_token.status_code == 403
    assert queued_payloads(redis) == []


def test_secondary_token_is_accepted_during_rotation(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    receiver = start_receiver(make_settings(twilio_auth_token_secondary=SECONDARY_TOKEN))
    assert receiver.post(receiver.url(), voice(), token=SECONDARY_TOKEN).status_code == 204
    assert len(queued_payloads(redis)) == 1


def test_subaccount_callbacks_are_checked_with_that_account_token(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis, tmp_path: Path
) -> None:
    sub = "AC" + "5" * 32
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({sub: {"auth_token": "sub-token"}}))
    receiver = start_receiver(make_settings(twilio_accounts_file=accounts))
    params = voice(AccountSid=sub)
    assert receiver.post(receiver.url(), params, token=AUTH_TOKEN).status_code == 403
    assert receiver.post(receiver.url(), params, token="sub-token").status_code == 204
    assert [p["account_sid"] for p in queued_payloads(redis)] == [sub]


def test_behind_a_tls_proxy_the_public_url_is_what_counts(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    receiver = start_receiver(make_settings(public_base_url="https://hooks.example.com"))
    public = "https://hooks.example.com/twilio/recordings/voice"
    signature = sign(AUTH_TOKEN, public, voice().items())
    # The request arrives over plain http on loopback, with a Host header an attacker could set.
    response = httpx.post(receiver.url(), data=voice(), headers={"X-Twilio-Signature": signature, "Host": "evil.example"})
    assert response.status_code == 204
    signed_as_seen = sign(AUTH_TOKEN, receiver.url(), voice().items())
    assert httpx.post(receiver.url(), data=voice(), headers={"X-Twilio-Signature": signed_as_seen}).status_code == 403
    assert len(queued_payloads(redis)) == 1


def test_encoded_path_and_query_are_checked_exactly_as_sent(receiver: Receiver, redis: Redis) -> None:
    raw_url = f"{receiver.base_url}/twilio/recordings/%76oice?tag=a%2Fb&name=caf%C3%A9&empty="
    signature = sign(AUTH_TOKEN, raw_url, voice().items())
    with httpx.Client() as client:
        request = client.build_request("POST", raw_url, data=voice(), headers={"X-Twilio-Signature": signature})
        assert request.url.raw_path == b"/twilio/recordings/%76oice?tag=a%2Fb&name=caf%C3%A9&empty="
        assert client.send(request).status_code == 204
        decoded_url = f"{receiver.base_url}/twilio/recordings/voice?tag=a/b&name=café&empty="
        decoded_sig = sign(AUTH_TOKEN, decoded_url, voice("absent").items())
        request = client.build_request("POST", raw_url, data=voice("absent"), headers={"X-Twilio-Signature": decoded_sig})
        assert client.send(request).status_code == 403
    assert len(queued_payloads(redis)) == 1


def test_get_callbacks_are_signed_over_the_whole_url(receiver: Receiver, redis: Redis) -> None:
    query = httpx.QueryParams(voice("absent", ErrorCode="16102"))
    url = f"{receiver.url()}?{query}"
    assert httpx.get(url, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url)}).status_code == 204
    assert httpx.get(url, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url + "x")}).status_code == 403
    [payload] = queued_payloads(redis)
    assert payload["status"] == "absent" and payload["error_code"] == "16102"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (voice(RecordingSid="RE123"), "RecordingSid is not a RE SID"),
        (voice(RecordingSid="CA" + "a" * 32), "RecordingSid is not a RE SID"),
        (voice(AccountSid="AC" + "g" * 32), "AccountSid is not a AC SID"),
        (voice(CallSid="CAxyz"), "CallSid is not a CA SID"),
        (voice(ConferenceSid="CF" + "1" * 31), "ConferenceSid is not a CF SID"),
        ({k: v for k, v in voice().items() if k != "RecordingSid"}, "RecordingSid is missing"),
        ({k: v for k, v in voice().items() if k != "RecordingStatus"}, "RecordingStatus is missing"),
        (voice(RecordingDuration="twelve"), "RecordingDuration is not a number"),
    ],
)
def test_malformed_but_signed_callbacks_get_400_with_the_reason(
    receiver: Receiver, redis: Redis, params: dict[str, str], reason: str
) -> None:
    response = receiver.post(receiver.url(), params)
    assert response.status_code == 400
    assert response.text.strip() == reason
    assert queued_payloads(redis) == []


def test_unknown_status_is_acknowledged_and_not_queued(receiver: Receiver, redis: Redis) -> None:
    assert receiver.post(receiver.url(), voice("paused")).status_code == 204
    assert queued_payloads(redis) == []


def test_wrong_method_type_or_size_never_reaches_the_queue(receiver: Receiver, redis: Redis) -> None:
    url = receiver.url()
    signature = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, voice().items())}
    assert httpx.put(url, data=voice(), headers=signature).status_code == 405
    assert httpx.delete(url, headers=signature).status_code == 405
    as_text = httpx.post(url, content="RecordingSid=x", headers={**signature, "Content-Type": "text/plain"})
    assert as_text.status_code == 415
    big = voice(Padding="x" * (receiver.settings.max_body_bytes + 1))
    assert receiver.post(url, big).status_code == 413
    not_utf8 = httpx.post(url, content=b"RecordingSid=%FF%FE", headers={**signature, "Content-Type": "application/x-www-form-urlencoded"})
    assert not_utf8.status_code == 403
    assert queued_payloads(redis) == []


def test_health_and_readiness(receiver: Receiver, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]) -> None:
    assert httpx.get(f"{receiver.base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{receiver.base_url}/readyz").status_code == 200
    assert httpx.get(f"{receiver.base_url}/readyz").json()["spool"] == 0
    # Without Redis the receiver stays ready as long as its spool can keep events.
    dead = start_receiver(make_settings(redis_url="redis://127.0.0.1:1/0"))
    assert httpx.get(f"{dead.base_url}/healthz").status_code == 200
    ready = httpx.get(f"{dead.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["redis"] == "ConnectionError"


@BOTH_PIPES
def test_a_concurrent_burst_with_duplicates_queues_each_recording_exactly_once(receiver: Receiver, redis: Redis) -> None:
    # Enough at once that requests share script calls, and a full batch is sent by the request
    # that filled it; every recording arrives twice, the copies in the same burst.
    sids = ["RE" + f"{index:032x}" for index in range(120)]
    requests = [(sid, sign(AUTH_TOKEN, receiver.url(), list(voice(sid=sid).items()))) for sid in sids * 2]
    random.Random(7).shuffle(requests)

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def one(sid: str, signature: str) -> int:
                response = await client.post(receiver.url(), data=voice(sid=sid), headers={"X-Twilio-Signature": signature})
                return response.status_code

            return await asyncio.gather(*(one(sid, signature) for sid, signature in requests))

    assert set(asyncio.run(burst())) == {204}
    assert sorted(str(p["sid"]) for p in queued_payloads(redis)) == sorted(sids)
    counts = redis.hgetall(stats.CALLBACKS)
    assert (counts[b"voice|completed|queued"], counts[b"voice|completed|duplicate"]) == (b"120", b"120")
    for sid in sids[:5]:
        verdicts = sorted(json.loads(entry)["verdict"] for entry in redis.lrange(f"rr:timeline:voice:{sid}", 0, -1))
        assert verdicts == ["duplicate", "queued"]


def test_accepted_callbacks_log_at_debug_with_the_token_label_never_the_token(redis_url: str, tmp_path: Path) -> None:
    # Its own process: structlog keeps a module's logger at the level it was first used with.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "REDIS_URL": redis_url, "PUBLIC_BASE_URL": base, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    log = tmp_path / "receiver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "receiver.app.factory:create_app", "--factory", "--port", str(port), "--log-level", "warning"],
            env=env, cwd=ROOT, stderr=out,
        )
    try:
        wait_for(lambda: answers_200(base + "/healthz"), timeout=20, what="the receiver")
        sid = "RE" + "d" * 32
        url = base + "/twilio/recordings/voice"
        params = voice(sid=sid)
        assert httpx.post(url, data=params, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, params.items())}).status_code == 204
        lines = wait_for(lambda: [line for line in log.read_text().splitlines() if "callback accepted" in line], what="the log line")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    entry = json.loads(lines[0])
    assert (entry["sid"], entry["outcome"], entry["token"], entry["level"]) == (sid, "queued", "primary", "debug")
    assert AUTH_TOKEN not in log.read_text()
