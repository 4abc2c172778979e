"""Forged, odd and malformed requests: never a 5xx, never a queued job; and the signing variants."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis import Redis
from twilio.request_validator import RequestValidator

from receiver.app import callbacks, signature_diagnosis
from receiver.app.form import parse_params
from receiver.app.signature_diagnosis import diagnose
from receiver.app.signed_url import RequestLine
from receiver.kernel import stats
from tests.conftest import AUTH_TOKEN, Receiver, counters_written
from tests.support.servers import wait_for
from tests.support.twilio_signing import body_sha256, sign, sign_sha256
from tests.unit.receiver.app.test_receiver_voice import queued_payloads, voice
from workers.commands.settings import Settings

TOKENS = [("primary", SecretStr(AUTH_TOKEN))]


@pytest.fixture
def receiver(make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]) -> Receiver:
    return start_receiver(make_settings(twilio_webhook_shared_keys={"webhooks_sharedkey_1": "shared-secret"}))


def test_shared_key_hmac_sha256_signatures(receiver: Receiver, redis: Redis) -> None:
    url = receiver.url()
    settings_header = {"X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}
    good = {"X-Twilio-Signature": sign_sha256("shared-secret", url, voice().items()), **settings_header}
    assert httpx.post(url, data=voice(), headers=good).status_code == 204
    wrong_key = {**good, "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_2,algorithm=HMAC_SHA256"}
    assert httpx.post(url, data=voice("absent"), headers=wrong_key).status_code == 403
    # The auth token is not a substitute for the shared key the header names.
    token_signed = {"X-Twilio-Signature": sign_sha256(AUTH_TOKEN, url, voice("absent").items()), **settings_header}
    assert httpx.post(url, data=voice("absent"), headers=token_signed).status_code == 403
    assert len(queued_payloads(redis)) == 1


def test_json_body_signed_with_body_sha256(receiver: Receiver, redis: Redis) -> None:
    body = json.dumps(voice("absent", ErrorCode="16101"))
    url = receiver.url(query=f"bodySHA256={body_sha256(body)}")
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url), "Content-Type": "application/json"}
    assert httpx.post(url, content=body, headers=headers).status_code == 204
    altered = body.replace("16101", "16102")
    assert httpx.post(url, content=altered, headers=headers).status_code == 403
    [payload] = queued_payloads(redis)
    assert payload["error_code"] == "16101"


def test_trusted_proxy_headers_instead_of_a_public_base_url(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    receiver = start_receiver(make_settings(trust_proxy_headers=True))
    public = "https://hooks.example.com/twilio/recordings/voice"
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, public, voice().items()),
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    assert httpx.post(receiver.url(), data=voice(), headers=headers).status_code == 204
    assert httpx.post(receiver.url(), data=voice(), headers={**headers, "X-Forwarded-Host": "evil.example"}).status_code == 403
    assert len(queued_payloads(redis)) == 1


@pytest.mark.parametrize(
    ("signed_url", "part"),
    [
        ("http://hooks.example.com/twilio/recordings/voice", "scheme"),
        ("https://internal:8443/twilio/recordings/voice", "host"),
        ("https://hooks.example.com/twilio/recordings/voice/", "path"),
        ("https://hooks.example.com/twilio/recordings/voice?x=1", None),
    ],
)
def test_a_mismatch_names_the_part_that_differs(signed_url: str, part: str | None) -> None:
    params = parse_params("&".join(f"{k}={v}" for k, v in voice().items() if "/" not in v))
    signature = sign(AUTH_TOKEN, signed_url, [(k, v[0]) for k, v in params.items()])
    line = RequestLine("http", "internal:8443", b"/twilio/recordings/voice", b"")
    ours = "https://hooks.example.com/twilio/recordings/voice"
    found = diagnose(ours, line, params, signature, None, TOKENS)
    if part is None:
        assert found.startswith("token or parameters")
    else:
        assert found.startswith(f"{part}: Twilio signed")
    assert AUTH_TOKEN not in found and signature not in found
    assert diagnose(ours, line, params, sign("other-token", ours, []), None, TOKENS).startswith("token or parameters")


def test_odd_encodings_end_as_403_not_500(receiver: Receiver, redis: Redis) -> None:
    url = receiver.url()
    form = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "abc="}
    for body in (b"RecordingSid=%ED%A0%80", b"\xff\xfe=\x00", b"a=%zz&&&==", b"RecordingSid=" + "é".encode("latin-1")):
        assert httpx.post(url, content=body, headers=form).status_code == 403
    weird_header = {**form, "X-Twilio-Signature": "\u00e9\u00ff".encode("latin-1")}
    assert httpx.post(url, content=b"a=b", headers=weird_header).status_code == 403
    assert queued_payloads(redis) == []


METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
CONTENT_TYPES = st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data", ""])
TEXT = st.text(max_size=40)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    method=METHODS,
    content_type=CONTENT_TYPES,
    form=st.dictionaries(st.sampled_from([*list(voice()), "X", ""]), TEXT, max_size=12),
    raw=st.binary(max_size=300),
    use_raw=st.booleans(),
    signature=st.one_of(st.none(), st.from_regex(r"[!-~]{1,40}", fullmatch=True)),
    suffix=st.sampled_from(["", "?a=1", "/", "?bodySHA256=00", "%2e"]),
)
def test_random_requests_never_5xx_and_never_queue(
    receiver: Receiver, redis: Redis, method: str, content_type: str, form: dict[str, str], raw: bytes,
    use_raw: bool, signature: str | None, suffix: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    body = raw if use_raw else httpx.QueryParams(form).__str__().encode()
    response = httpx.request(method, receiver.url() + suffix, content=body if method not in ("GET", "HEAD") else None, headers=headers)
    assert response.status_code < 500
    assert redis.llen("rq:queue:recordings") == 0


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def doctor_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each URL variant the signature doctor re-validates in the in-process receiver."""
    checks: list[str] = []

    class Counting(RequestValidator):
        def validate(self, uri: str, *args: Any, **kwargs: Any) -> bool:
            checks.append(uri)
            return bool(super().validate(uri, *args, **kwargs))

    monkeypatch.setattr(signature_diagnosis, "RequestValidator", Counting)
    return checks


def forged(receiver: Receiver, body: bytes) -> httpx.Response:
    signature = sign("not-the-token", receiver.url(), [])
    return httpx.post(receiver.url(), content=body, headers={**FORM, "X-Twilio-Signature": signature}, timeout=10)


def test_thousands_of_fields_are_refused_before_any_signature_work(
    receiver: Receiver, redis: Redis, doctor_checks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = callbacks.verify

    def counted_verify(url: str, *args: Any) -> Any:
        verified.append(url)
        return real_verify(url, *args)

    monkeypatch.setattr(callbacks, "verify", counted_verify)
    body = httpx.QueryParams(voice()).__str__().encode() + b"&F=1" * 3000  # 13 KB: under the size limit
    response = forged(receiver, body)
    assert response.status_code == 413 and "more than 100 fields" in response.text
    assert verified == [] and doctor_checks == []
    counters_written(redis)
    assert redis.hlen(stats.SIGNATURE_FAILURES) == 0


def test_only_callback_sized_bodies_are_diagnosed(receiver: Receiver, doctor_checks: list[str]) -> None:
    small = httpx.QueryParams(voice()).__str__().encode()
    assert forged(receiver, small).status_code == 403
    diagnosed = len(doctor_checks)
    assert diagnosed > 1  # one signature check per URL variant
    padded = small + b"&Padding=" + b"x" * 5000  # a dozen fields, but no callback is 5 KB
    assert forged(receiver, padded).status_code == 403
    assert len(doctor_checks) == diagnosed


def test_diagnoses_are_rate_limited(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], doctor_checks: list[str]
) -> None:
    # One diagnosis, then the next token is 1,000 s away: no clock in the test can reach it.
    receiver = start_receiver(make_settings(signature_diagnoses_per_second=0.001))
    small = httpx.QueryParams(voice()).__str__().encode()
    assert forged(receiver, small).status_code == 403
    diagnosed = len(doctor_checks)
    assert diagnosed > 1
    assert [forged(receiver, small).status_code for _ in range(3)] == [403, 403, 403]
    assert len(doctor_checks) == diagnosed


def raw_request(receiver: Receiver, content_length: int, body: bytes) -> socket.socket:
    """A connection that sent a voice callback's headers and `body`, then nothing more."""
    host, port = receiver.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    sock.sendall(
        f"POST /twilio/recordings/voice HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {content_length}\r\n"
        f"X-Twilio-Signature: {sign(AUTH_TOKEN, receiver.url(), [])}\r\n\r\n".encode() + body
    )
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; the socket's timeout turns a hang into a failure."""
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


@pytest.mark.parametrize("sent", [b"", b"AccountSid=AC"])
def test_a_stalled_body_gets_408_and_the_connection_is_closed(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis, sent: bytes
) -> None:
    receiver = start_receiver(make_settings(body_timeout_seconds=0.2))
    with raw_request(receiver, 500, sent) as sock:
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    counters_written(redis)
    assert redis.hlen(stats.SIGNATURE_FAILURES) == 0


def test_a_client_leaving_mid_body_is_not_a_signature_failure(receiver: Receiver, redis: Redis) -> None:
    with raw_request(receiver, 500, b"AccountSid=AC&RecordingSid=RE"):
        pass
    field = stats.callback_field("voice", "-", "client_disconnected")
    wait_for(lambda: redis.hget(stats.CALLBACKS, field) == b"1", what="the disconnect to be counted")
    assert redis.hlen(stats.SIGNATURE_FAILURES) == 0
    assert redis.hget(stats.CALLBACKS, stats.callback_field("voice", "-", "rejected_signature")) is None
