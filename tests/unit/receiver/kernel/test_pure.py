"""The pure layer, on recorded payloads and known answers: no server, no Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from receiver.app.asgi_io import BodyTimeout, read_body
from receiver.app.body_deadline import BodyDeadlines
from receiver.app.form import Params, parse_params
from receiver.app.signature import form_signature, verify
from receiver.app.signature_diagnosis import DiagnosisBudget
from receiver.app.signed_url import RequestLine, redact, signed_url
from receiver.app.sources import Ignored, voice
from receiver.kernel.errors import BadCallback, TooManyFields
from receiver.kernel.events import Origin, RecordingEvent, Source, Status
from receiver.kernel.job_template import rq_time_at
from tests.support.paths import SAMPLES


def test_known_answer_vector_from_twilio_python() -> None:
    # twilio-python's own test vector (tests/unit/test_request_validator.py).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = parse_params(b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212")
    tokens = [("primary", SecretStr("12345"))]
    verdict = verify(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", None, tokens)
    assert verdict.ok and verdict.matched == "primary"
    assert not verify(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8!", None, tokens).ok
    assert verify(url.replace("https", "http"), params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", None, tokens).reason == "signature does not match"


def test_missing_signature_never_reaches_the_validator() -> None:
    assert verify("https://x", parse_params(b""), None, None, [("primary", SecretStr("t"))]).reason == "missing X-Twilio-Signature header"


def test_lone_surrogates_fail_verification_instead_of_raising() -> None:
    params = parse_params("RecordingSid=\ud800")
    verdict = verify("https://x/\udcff", params, "abc=", None, [("primary", SecretStr("t"))])
    assert not verdict.ok and "cannot be verified" in verdict.reason


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [("completed", Status.COMPLETED, None), ("in-progress", Status.IN_PROGRESS, None),
     ("absent", Status.ABSENT, "16101"), ("failed", Status.FAILED, "16104")],
)
def test_recorded_voice_payloads_parse(name: str, status: Status, error: str | None) -> None:
    event = voice.parse(parse_params((SAMPLES / "voice" / f"{name}.form").read_bytes().strip()))
    assert isinstance(event, RecordingEvent)
    assert (event.source, event.status, event.error_code) == (Source.VOICE, status, error)
    assert event.sid == "RE" + "a" * 32 and event.related["call_sid"] == "CA" + "b" * 32
    assert RecordingEvent.from_payload(event.to_payload()) == event


def test_unknown_voice_status_is_ignored_not_an_error() -> None:
    params = parse_params((SAMPLES / "voice" / "completed.form").read_bytes().strip().replace(b"=completed", b"=stopped"))
    assert isinstance(voice.parse(params), Ignored)


def test_payload_that_is_not_an_event_is_refused() -> None:
    with pytest.raises(BadCallback):
        RecordingEvent.from_payload({"source": "fax", "sid": "x"})


def test_event_payload_round_trips_with_origin() -> None:
    event = RecordingEvent(Source.VOICE, "RE" + "1" * 32, Status.COMPLETED, "AC" + "2" * 32)
    again = RecordingEvent.from_payload(event.with_origin(Origin.RECONCILER).to_payload())
    assert again.origin is Origin.RECONCILER and again.sid == event.sid


def test_signed_url_uses_configuration_and_raw_bytes_never_the_host_header() -> None:
    line = RequestLine("http", "evil.example", b"/twilio/recordings/%76oice", b"a=%2F")
    assert signed_url(line, "https://hooks.example.com", False) == "https://hooks.example.com/twilio/recordings/%76oice?a=%2F"
    proxied = RequestLine("http", "10.0.0.1:8000", b"/p", b"", forwarded_proto="https", forwarded_host="hooks.example.com")
    assert signed_url(proxied, None, True) == "https://hooks.example.com/p"
    assert signed_url(proxied, None, False) == "http://10.0.0.1:8000/p"


def test_redact_drops_credentials_and_query_values() -> None:
    assert redact("https://user:pw@h.example:8443/p?token=abc&x=1") == "https://h.example:8443/p?token=…&x=…"


@given(st.text(alphabet="ab=&%+2F0éx ;fcA397", max_size=60))
def test_param_parser_matches_parse_qsl(text: str) -> None:
    _parses_like_parse_qsl(text)


def _parses_like_parse_qsl(text: str) -> None:
    from urllib.parse import parse_qsl

    try:
        expected: dict[str, list[str]] | None = {}
        for name, value in parse_qsl(text, keep_blank_values=True, errors="strict"):
            expected.setdefault(name, []).append(value)  # type: ignore[union-attr]
    except ValueError:
        expected = None
    try:
        got: dict[str, list[str]] | None = dict(parse_params(text))
    except BadCallback:
        got = None
    assert got == expected


# Escapes whole, Twilio's and others, so the replace-based shortcut meets its neighbours: "%25"
# next to a hex pair, lowercase hex, UTF-8 sequences, a lone "%", escapes split across "&" and "=".
_PIECES = ["%2F", "%3A", "%2C", "%2B", "%20", "%40", "%3D", "%25", "%26", "%2f", "%3a", "%C3%A9", "%E9", "%", "+",
           "=", "&", "2F", "3A", "a", "é"]


@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_param_parser_matches_parse_qsl_on_whole_escapes(text: str) -> None:
    _parses_like_parse_qsl(text)


_names = st.text(alphabet="AbcR_é0 ", min_size=1, max_size=6)
_values = st.text(max_size=12)  # any text, lone surrogates included


@given(
    url=st.text(max_size=30),
    params=st.dictionaries(_names, st.lists(_values, min_size=1, max_size=3), max_size=6),
    algorithm=st.sampled_from([None, "HMAC_SHA1", "HMAC_SHA256", "hmac_sha256", "MD5"]),
    token=st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20),
)
def test_form_signature_equals_twilios_compute_signature(
    url: str, params: dict[str, list[str]], algorithm: str | None, token: str
) -> None:
    def outcome(compute: object) -> object:
        try:
            return compute()  # type: ignore[operator]
        except (ValueError, UnicodeError) as exc:
            return type(exc)

    ours = outcome(lambda: form_signature(token.encode("utf-8"), url, Params(params), algorithm))
    theirs = outcome(lambda: RequestValidator(token).compute_signature(url, Params(params), algorithm))
    assert ours == theirs


@given(st.floats(min_value=1e9, max_value=4e9))
def test_rq_time_at_matches_rqs_own_format(epoch: float) -> None:
    from datetime import datetime

    from rq.utils import utcformat

    assert rq_time_at(epoch) == utcformat(datetime.fromtimestamp(epoch, UTC))


def test_a_body_read_times_out_after_its_sweeps_and_no_sooner() -> None:
    async def scenario() -> None:
        deadlines = BodyDeadlines(5.0)
        never = asyncio.Event()

        async def stalled() -> dict[str, object]:
            await never.wait()
            return {"type": "http.request", "body": b"", "more_body": False}

        async def endpoint() -> bytes:  # read_body a few awaits down, as under uvicorn
            return await read_body(stalled, "10", 100)

        reading = asyncio.create_task(endpoint())
        other = asyncio.create_task(read_body(stalled, "10", 100))
        await asyncio.sleep(0)  # a yield, not a wait: both reads are now parked in receive()
        assert [deadlines.sweep() for _ in range(BodyDeadlines.SWEEPS_PER_TIMEOUT)] == [0] * BodyDeadlines.SWEEPS_PER_TIMEOUT
        other.cancel()  # a cancellation that is not the deadline's (shutdown) stays one
        with pytest.raises(asyncio.CancelledError):
            await other
        assert not reading.done()
        assert deadlines.sweep() == 1
        with pytest.raises(BodyTimeout):
            await reading
        assert deadlines.sweep() == 0

    asyncio.run(scenario())


def test_the_diagnosis_budget_refills_at_its_rate() -> None:
    now = [0.0]
    budget = DiagnosisBudget(2.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(3)] == [True, True, False]
    now[0] = 0.5
    assert [budget.take() for _ in range(2)] == [True, False]
    now[0] = 100.0  # a long quiet spell refills only up to the burst
    assert [budget.take() for _ in range(3)] == [True, True, False]
    assert DiagnosisBudget(0.0, clock=lambda: now[0]).take() is False


def test_more_fields_than_allowed_are_refused_before_parsing() -> None:
    assert parse_params(b"a=1&b=2", max_fields=2) == {"a": ["1"], "b": ["2"]}
    with pytest.raises(TooManyFields):
        parse_params(b"a=1&b=2&c=%ff", max_fields=2)  # refused before the bad escape is seen
