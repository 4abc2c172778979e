"""Tests for the Twilio stand-in: spec shapes, the real twilio client, faults, media, legacy XML, auth."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from defusedxml import ElementTree as SafeET

from tests.standin import StandinServer, StandinState
from tests.standin import spec as S
from tests.standin.client import twilio_client
from tests.standin.records import Account
from tests.support.paths import REPO_ROOT, SHARED
from tests.support.recording_keys import key_pair
from workers.encryption import details
from workers.encryption.private_keys import KeyDirectory

SPEC_DIR = SHARED / "twilio-oai"
REPO = REPO_ROOT
V2010 = "/2010-04-01/Accounts/{AccountSid}"
# The <Recording> properties of the 2008 document (shared/seeds/004_…), in its example's order.
LEGACY_FIELDS = ["Sid", "AccountSid", "CallSid", "Duration", "DateCreated", "DateUpdated"]


# -- fixtures -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    with StandinServer(StandinState(seed=1234)) as srv:
        yield srv


@pytest.fixture
def state(server: StandinServer) -> StandinState:
    server.state.reset(keep_accounts=False)
    return server.state


@pytest.fixture
def account(state: StandinState) -> Account:
    return state.add_account()


@pytest.fixture
def http(server: StandinServer, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token),
                      timeout=5.0, trust_env=False) as client:
        yield client


@pytest.fixture
def specs() -> dict[str, dict[str, Any]]:
    if not SPEC_DIR.is_dir():
        pytest.skip(f"Twilio OpenAPI specs not found at {SPEC_DIR} (shared/twilio-oai beside the repo)")
    pytest.importorskip("openapi_schema_validator", reason="pip install openapi-schema-validator")
    return {name: S.load_spec(name, SPEC_DIR) for name in S.SPEC_FILES}


def rfc(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC).replace(microsecond=0))


# -- (1) shapes against the OpenAPI descriptions ---------------------------------

def test_voice_fetch_and_list_match_spec(specs: dict[str, Any], http: httpx.Client,
                                         state: StandinState, account: Account) -> None:
    api = specs["api"]
    rec = state.add_voice(duration=17, channels=2, conference_sid="CF" + "a" * 32)
    body = http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}.json").json()
    S.validate(body, api, f"{V2010}/Recordings/{{Sid}}.json")
    example = S.examples(api, f"{V2010}/Recordings/{{Sid}}.json")["fetch"]
    assert set(body) == set(example)
    assert body["duration"] == "17"
    assert body["date_created"] == rfc(rec.date_created)
    assert body["media_url"] == f"{http.base_url}/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}"

    page = http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings.json").json()
    S.validate(page, api, f"{V2010}/Recordings.json")
    list_example = S.examples(api, f"{V2010}/Recordings.json")["readFull"]
    assert set(page) == set(list_example)
    assert set(page["recordings"][0]) == set(list_example["recordings"][0])


def test_an_encrypted_voice_recording_matches_the_spec_and_serves_ciphertext_then_tag(
    specs: dict[str, Any], http: httpx.Client, state: StandinState, account: Account, tmp_path: Path,
) -> None:
    api = specs["api"]
    pair = key_pair()
    key_sid = state.add_public_key(pair.public_pem)
    rec = state.add_voice(account_sid=account.sid, encrypt_with=key_sid)
    body = http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}.json").json()
    S.validate(body, api, f"{V2010}/Recordings/{{Sid}}.json")
    example = S.examples(api, f"{V2010}/Recordings/{{Sid}}.json")["fetch"]
    # The documented example's shape: the same three fields, a 12-byte IV in base64.
    assert set(body) == set(example)
    assert set(body["encryption_details"]) == set(example["encryption_details"])
    assert body["encryption_details"]["encryption_public_key_sid"] == key_sid
    found = details.parse(body)
    assert found is not None and len(found.iv) == 12
    served = http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}.wav").content
    # AES-256-GCM with the tag appended: the CEK unwrapped with the private key opens it.
    pair.install(tmp_path, key_sid)
    cek = KeyDirectory(tmp_path).content_key(found)
    assert AESGCM(cek).decrypt(found.iv, served, None) == rec.plaintext and rec.plaintext[:4] == b"RIFF"


def test_call_and_conference_lists_match_spec(specs: dict[str, Any], http: httpx.Client,
                                              state: StandinState, account: Account) -> None:
    api = S.relaxed(specs["api"], "api")
    rec = state.add_voice(conference_sid="CF" + "b" * 32)
    for path, sid in (("Calls/{CallSid}", rec.call_sid), ("Conferences/{ConferenceSid}", rec.conference_sid)):
        scoped = path.split("/")[0]
        page = http.get(f"/2010-04-01/Accounts/{account.sid}/{scoped}/{sid}/Recordings.json").json()
        spec_path = f"{V2010}/{path}/Recordings.json"
        S.validate(page, api, spec_path)
        example = S.examples(api, spec_path)["readFull"]["recordings"][0]
        assert [r["sid"] for r in page["recordings"]] == [rec.sid]
        assert set(page["recordings"][0]) == set(example)
    one = http.get(f"/2010-04-01/Accounts/{account.sid}/Calls/{rec.call_sid}/Recordings/{rec.sid}.json")
    assert one.json()["track"] == "both"


def test_video_fetch_and_lists_match_spec(specs: dict[str, Any], http: httpx.Client,
                                          state: StandinState) -> None:
    video = S.relaxed(specs["video"], "video")
    rec = state.add_video()
    state.add_video(type="video")
    body = http.get(f"/v1/Recordings/{rec.sid}").json()
    S.validate(body, video, "/v1/Recordings/{Sid}")
    assert set(body) == set(S.examples(video, "/v1/Recordings/{Sid}")["fetch"])
    assert body["date_created"] == rec.date_created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["size"] == 2048
    assert body["links"] == {"media": f"{http.base_url}/v1/Recordings/{rec.sid}/Media"}

    page = http.get("/v1/Recordings").json()
    S.validate(page, video, "/v1/Recordings")
    assert set(page["meta"]) == set(S.examples(video, "/v1/Recordings")["readResults"]["meta"])
    assert [r["container_format"] for r in page["recordings"]] == ["mkv", "mka"]

    room = http.get(f"/v1/Rooms/{rec.room_sid}/Recordings/{rec.sid}").json()
    S.validate(room, video, "/v1/Rooms/{RoomSid}/Recordings/{Sid}")
    assert set(room) == set(S.examples(video, "/v1/Rooms/{RoomSid}/Recordings/{Sid}")["fetch"])
    room_page = http.get(f"/v1/Rooms/{rec.room_sid}/Recordings").json()
    S.validate(room_page, video, "/v1/Rooms/{RoomSid}/Recordings")
    assert [r["sid"] for r in room_page["recordings"]] == [rec.sid]


def test_media_fetch_and_list_match_spec(specs: dict[str, Any], http: httpx.Client,
                                         state: StandinState) -> None:
    media = specs["media"]
    rec = state.add_media(duration=31)
    body = http.get(f"/v1/MediaRecordings/{rec.sid}").json()
    S.validate(body, media, "/v1/MediaRecordings/{Sid}")
    assert set(body) == S.declared_properties(media, "media.v1.media_recording")
    assert body["links"] == {"media": f"{http.base_url}/v1/MediaRecordings/{rec.sid}/Media",
                             "timed_metadata": f"{http.base_url}/v1/MediaRecordings/{rec.sid}/TimedMetadata"}
    page = http.get("/v1/MediaRecordings").json()
    S.validate(page, media, "/v1/MediaRecordings")
    assert page["meta"]["key"] == "media_recordings"
    assert page["media_recordings"] == [body]


# Every OpenAPI operation on a recording the stand-in serves: (spec, method, path).
SERVED_OPERATIONS = [
    *[("api", method, f"{V2010}/{scope}Recordings/{{Sid}}.json")
      for scope in ("", "Calls/{CallSid}/", "Conferences/{ConferenceSid}/") for method in ("get", "delete")],
    *[("api", "get", f"{V2010}/{scope}Recordings.json")
      for scope in ("", "Calls/{CallSid}/", "Conferences/{ConferenceSid}/")],
    ("api", "get", f"{V2010}/Recordings/{{RecordingSid}}/Transcriptions.json"),
    *[("video", method, f"{scope}/Recordings/{{Sid}}")
      for scope in ("/v1", "/v1/Rooms/{RoomSid}") for method in ("get", "delete")],
    ("video", "get", "/v1/Recordings"), ("video", "get", "/v1/Rooms/{RoomSid}/Recordings"),
    ("media", "get", "/v1/MediaRecordings/{Sid}"), ("media", "delete", "/v1/MediaRecordings/{Sid}"),
    ("media", "get", "/v1/MediaRecordings"),
]


@pytest.mark.parametrize(("name", "method", "path"), SERVED_OPERATIONS)
def test_every_served_operation_answers_a_documented_status_and_shape(
        specs: dict[str, Any], server: StandinServer, http: httpx.Client, state: StandinState,
        account: Account, name: str, method: str, path: str) -> None:
    spec = S.relaxed(specs[name], name)
    op = S.operation(spec, path, method)
    if name == "api":
        rec: Any = state.add_voice(conference_sid="CF" + "e" * 32)
        state.add_transcription(rec.sid)
        values = {"AccountSid": account.sid, "Sid": rec.sid, "CallSid": rec.call_sid,
                  "ConferenceSid": rec.conference_sid, "RecordingSid": rec.sid}
    elif name == "video":
        rec = state.add_video()
        values = {"Sid": rec.sid, "RoomSid": rec.room_sid}
    else:
        rec = state.add_media()
        values = {"Sid": rec.sid}
    url = path.format(**values)
    # Each of these operations requires the account's Basic credentials.
    assert op["security"] == [{"accountSid_authToken": []}]
    assert httpx.request(method.upper(), f"{server.base_url}{url}", trust_env=False).status_code == 401
    response = http.request(method.upper(), url)
    assert str(response.status_code) in op["responses"], (response.status_code, sorted(op["responses"]))
    if response.status_code == 204:
        assert response.content == b""
    else:
        assert response.headers["content-type"] == "application/json"
        S.validate(response.json(), spec, path, method)


def test_spec_examples_need_exactly_the_documented_relaxations(specs: dict[str, Any]) -> None:
    import jsonschema

    cases = [("api", f"{V2010}/Calls/{{CallSid}}/Recordings.json", "readFull", "price"),
             ("video", "/v1/Recordings/{Sid}", "fetch", "codec")]
    for name, path, example_name, field in cases:
        example = S.examples(specs[name], path)[example_name]
        with pytest.raises(jsonschema.ValidationError) as info:
            S.validate(example, specs[name], path)
        assert info.value.absolute_path[-1] == field
        S.validate(example, S.relaxed(specs[name], name), path)


# -- (2) the real twilio client -------------------------------------------------

def test_twilio_client_fetches_voice_recording(server: StandinServer, state: StandinState,
                                               account: Account) -> None:
    rec = state.add_voice(duration=42)
    client = twilio_client(server.base_url, account.sid, account.auth_token)
    fetched = client.api.v2010.account.recordings(rec.sid).fetch()
    assert (fetched.sid, fetched.call_sid, fetched.duration, fetched.status) == (
        rec.sid, rec.call_sid, "42", "completed")
    assert fetched.date_created == rec.date_created.replace(microsecond=0)


def test_twilio_client_pages_through_voice_recordings(server: StandinServer, state: StandinState,
                                                      account: Account) -> None:
    sids = [state.add_voice().sid for _ in range(5)]
    client = twilio_client(server.base_url, account.sid, account.auth_token)
    listed = client.api.v2010.account.recordings.list(page_size=2)
    assert [r.sid for r in listed] == sids[::-1]
    calls = state.requests("GET", "/Recordings.json")
    assert len(calls) == 3
    tokens = [parse_qs(c["query"]).get("PageToken") for c in calls]
    assert tokens == [None, ["PA" + sids[3]], ["PA" + sids[1]]]
    streamed = list(client.api.v2010.account.recordings.stream(page_size=2, limit=3))
    assert [r.sid for r in streamed] == sids[:1:-1]


def test_twilio_client_video_list_and_media_requests(server: StandinServer, state: StandinState,
                                                     account: Account) -> None:
    videos = [state.add_video().sid for _ in range(3)]
    media = state.add_media()
    client = twilio_client(server.base_url, account.sid, account.auth_token)
    assert [r.sid for r in client.video.v1.recordings.list(page_size=2)] == videos[::-1]
    response = client.request("GET", f"{server.base_url}/v1/MediaRecordings/{media.sid}")
    assert response.status_code == 200
    assert json.loads(response.text)["sid"] == media.sid
    redirect = client.request("GET", f"{server.base_url}/v1/MediaRecordings/{media.sid}/Media")
    assert redirect.status_code == 302
    assert json.loads(redirect.text)["redirect_to"].startswith(f"{server.base_url}/_signed/{media.sid}?")


def test_twilio_client_with_api_key_and_error_mapping(server: StandinServer, state: StandinState,
                                                      account: Account) -> None:
    from twilio.base.exceptions import TwilioRestException

    key = state.add_api_key(account.sid)
    rec = state.add_voice()
    client = twilio_client(server.base_url, key.sid, key.secret, account_sid=account.sid)
    assert client.api.v2010.account.recordings(rec.sid).fetch().sid == rec.sid
    state.add_fault("GET", re.escape(rec.sid), 429, retry_after="7")
    with pytest.raises(TwilioRestException) as info:
        client.api.v2010.account.recordings(rec.sid).fetch()
    assert (info.value.status, info.value.code) == (429, 20429)


# -- (3) faults -----------------------------------------------------------------

def test_429_with_retry_after_then_normal(http: httpx.Client, state: StandinState, account: Account) -> None:
    rec = state.add_voice()
    url = f"/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}.json"
    state.add_fault("GET", r"/Recordings/RE[0-9a-f]+\.json$", 429, times=2, retry_after="3")
    for _ in range(2):
        limited = http.get(url)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "3"
        assert limited.json() == {"code": 20429, "message": "Too Many Requests",
                                  "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}
    assert http.get(url).status_code == 200
    assert [e["status"] for e in state.requests(path_contains=rec.sid)] == [429, 429, 200]
    assert state.faults == []


def test_fault_method_filter_forever_and_other_statuses(http: httpx.Client, state: StandinState,
                                                        account: Account) -> None:
    rec = state.add_media()
    state.add_fault("DELETE", "/v1/MediaRecordings/", 500, times=-1)
    state.add_fault(None, "/v1/MediaRecordings$", 503, times=1)
    assert http.get(f"/v1/MediaRecordings/{rec.sid}").status_code == 200
    for _ in range(3):
        failed = http.delete(f"/v1/MediaRecordings/{rec.sid}")
        assert (failed.status_code, failed.json()["code"]) == (500, 20500)
    assert http.get("/v1/MediaRecordings").json()["code"] == 20503
    assert http.get("/v1/MediaRecordings").status_code == 200
    legacy = state.add_legacy()
    state.add_fault("GET", "/2008-08-01/", 500)
    xml = SafeET.fromstring(http.get(f"/2008-08-01/Accounts/{account.sid}/Recordings/{legacy.sid}").text)
    assert xml.findtext("RestException/Status") == "500"


def test_hang_is_cut_by_client_timeout_and_delay_answers_late(http: httpx.Client, state: StandinState) -> None:
    rec = state.add_video()
    state.add_fault("GET", "/v1/Recordings/", 200, hang=True)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"/v1/Recordings/{rec.sid}", timeout=0.3)
    assert time.monotonic() - started < 3.0
    state.add_fault("GET", "/v1/Recordings/", 0, delay_s=0.2)
    started = time.monotonic()
    assert http.get(f"/v1/Recordings/{rec.sid}").status_code == 200
    assert time.monotonic() - started >= 0.2
    state.latency_s = 0.05
    started = time.monotonic()
    assert http.get(f"/v1/Recordings/{rec.sid}").status_code == 200
    assert time.monotonic() - started >= 0.05


def test_server_stops_promptly_while_a_request_hangs() -> None:
    outcome: list[BaseException | int] = []
    with StandinServer() as srv:
        srv.state.add_fault(None, "/v1/", 503, hang=True)

        def call() -> None:
            try:
                outcome.append(httpx.get(f"{srv.base_url}/v1/Recordings", timeout=30, trust_env=False).status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 5
        while srv.state.faults and time.monotonic() < deadline:
            time.sleep(0.01)  # until the hanging request has consumed the fault
        started = time.monotonic()
    assert time.monotonic() - started < 5.0
    caller.join(10)
    assert not caller.is_alive()
    assert outcome == [503]


# -- (4) /Media redirects and signed URLs --------------------------------------

def _signed(http: httpx.Client, path: str, **params: str) -> tuple[str, dict[str, list[str]]]:
    response = http.get(path, params=params)
    assert response.status_code == 302
    url = response.json()["redirect_to"]
    assert response.headers["Location"] == url
    return url, parse_qs(urlparse(url).query)


def test_video_media_redirect_and_signed_url_rules(server: StandinServer, http: httpx.Client,
                                                   state: StandinState) -> None:
    rec = state.add_video()
    url, query = _signed(http, f"/v1/Recordings/{rec.sid}/Media")
    assert url.startswith(f"{server.base_url}/_signed/{rec.sid}?")
    # "The URL returned will only be available for 60 minutes" without a Ttl.
    assert abs(int(query["Expires"][0]) - (time.time() + 3600)) < 5
    plain = httpx.get(url, trust_env=False)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "audio/webm"  # an OPUS track, by the document's table
    assert "content-disposition" not in plain.headers
    assert plain.content == state.media_bytes(rec, "mka") and len(plain.content) == 2048
    with_auth = http.get(url)
    assert with_auth.status_code == 400 and "<Code>InvalidArgument</Code>" in with_auth.text
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert httpx.get(tampered, trust_env=False).status_code == 403
    past = int(time.time()) - 1
    expired = f"{server.base_url}/_signed/{rec.sid}?Expires={past}&Signature={state.sign(rec.sid, past)}"
    denied = httpx.get(expired, trust_env=False)
    assert denied.status_code == 403 and "Request has expired" in denied.text
    _, room_query = _signed(http, f"/v1/Rooms/{rec.room_sid}/Recordings/{rec.sid}/Media", Ttl="60")
    assert abs(int(room_query["Expires"][0]) - (time.time() + 60)) < 5


@pytest.mark.parametrize(("codec", "kind", "content_type"), [
    ("VP8", "video", "video/webm"), ("OPUS", "audio", "audio/webm"), ("opus", "audio", "audio/webm"),
    ("PCMU", "audio", "audio/x-matroska"), ("H264", "video", "video/x-matroska"),
])
def test_video_signed_media_content_type_follows_the_codec(http: httpx.Client, state: StandinState,
                                                           codec: str, kind: str, content_type: str) -> None:
    rec = state.add_video(type=kind, codec=codec)
    url, _ = _signed(http, f"/v1/Recordings/{rec.sid}/Media")
    media = httpx.get(url, trust_env=False)
    assert (media.status_code, media.headers["content-type"]) == (200, content_type)
    assert media.content == state.media_bytes(rec, rec.container_format)


def test_video_media_ttl_up_to_seven_days_and_content_disposition(server: StandinServer, http: httpx.Client,
                                                                  state: StandinState) -> None:
    rec = state.add_video()
    path = f"/v1/Recordings/{rec.sid}/Media"
    _, week = _signed(http, path, Ttl="604800")
    assert abs(int(week["Expires"][0]) - (time.time() + 604800)) < 5
    too_long = http.get(path, params={"Ttl": "604801"})
    assert (too_long.status_code, too_long.json()["code"]) == (400, 20001)
    for disposition in ("attachment", "inline"):
        url, _ = _signed(http, path, ContentDisposition=disposition)
        media = httpx.get(url, trust_env=False)
        assert (media.status_code, media.headers["content-disposition"]) == (200, disposition)
    assert http.get(path, params={"ContentDisposition": "download"}).status_code == 400
    url, _ = _signed(http, path, ContentDisposition="inline")
    # The disposition is part of what is signed: a URL edited to another one is refused.
    assert httpx.get(url.replace("Disposition=inline", "Disposition=attachment"), trust_env=False).status_code == 403


def test_media_recording_redirect_and_unavailable_media(http: httpx.Client, state: StandinState) -> None:
    rec = state.add_media(format="webm")
    state.media_size = 5000
    url, _ = _signed(http, f"/v1/MediaRecordings/{rec.sid}/Media")
    body = httpx.get(url, trust_env=False)
    assert (body.headers["content-type"], len(body.content)) == ("video/webm", 5000)
    processing = state.add_media(status="processing")
    assert http.get(f"/v1/MediaRecordings/{processing.sid}/Media").status_code == 404
    assert http.delete(f"/v1/MediaRecordings/{rec.sid}").status_code == 204
    assert http.get(f"/v1/MediaRecordings/{rec.sid}").json()["status"] == "deleted"
    assert httpx.get(url, trust_env=False).status_code == 404


def test_voice_wav_and_mp3_media(http: httpx.Client, state: StandinState, account: Account) -> None:
    rec = state.add_voice(channels=2)
    base = f"/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}"
    wav = http.get(f"{base}.wav")
    assert (wav.headers["content-type"], wav.headers["content-length"]) == ("audio/x-wav", "2048")
    with wave.open(io.BytesIO(wav.content)) as parsed:
        assert (parsed.getnchannels(), parsed.getframerate(), parsed.getsampwidth()) == (2, 8000, 2)
        assert parsed.getnframes() == (2048 - 44) // 4
    assert http.get(base).content == wav.content == state.media_bytes(rec, "wav")
    mp3 = http.get(f"{base}.mp3")
    assert (mp3.headers["content-type"], len(mp3.content)) == ("audio/mpeg", 2048)
    in_progress = state.add_voice(status="in-progress")
    assert http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{in_progress.sid}.wav").status_code == 404


# -- (5) legacy XML ---------------------------------------------------------------

def test_legacy_fetch_and_paging_across_three_pages(http: httpx.Client, state: StandinState,
                                                    account: Account) -> None:
    recs = [state.add_legacy(duration=10 + i) for i in range(5)]
    one = http.get(f"/2008-08-01/Accounts/{account.sid}/Recordings/{recs[0].sid}.xml")
    assert one.headers["content-type"].startswith("application/xml")
    node = SafeET.fromstring(one.text).find("Recording")
    assert node is not None
    # Exactly the properties the 2008 document lists, in its example's order.
    assert [child.tag for child in node] == LEGACY_FIELDS
    assert node.findtext("Duration") == "10"
    assert node.findtext("DateCreated") == rfc(recs[0].date_created)
    seen: list[str] = []
    expected = [("0", "0", "1"), ("1", "2", "3"), ("2", "4", "4")]
    for page, start, end in expected:
        xml = SafeET.fromstring(http.get(f"/2008-08-01/Accounts/{account.sid}/Recordings",
                                         params={"PageSize": "2", "Page": page}).text)
        listing = xml.find("Recordings")
        assert listing is not None
        assert dict(listing.attrib) == {"page": page, "numpages": "3", "pagesize": "2", "total": "5",
                                        "start": start, "end": end}
        assert all([c.tag for c in r] == LEGACY_FIELDS for r in listing.findall("Recording"))
        seen += [r.findtext("Sid") or "" for r in listing.findall("Recording")]
    assert seen == [r.sid for r in reversed(recs)]
    future = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    none = SafeET.fromstring(http.get(f"/2008-08-01/Accounts/{account.sid}/Recordings?DateCreated>={future}").text)
    assert none.find("Recordings").attrib["total"] == "0"  # type: ignore[union-attr]


def test_legacy_instance_is_wav_bare_or_wav_mp3_or_xml_with_or_without_credentials(
        server: StandinServer, state: StandinState, account: Account) -> None:
    rec = state.add_legacy(account_sid=account.sid)
    url = f"{server.base_url}/2008-08-01/Accounts/{account.sid}/Recordings/{rec.sid}"
    # Unlike the list, the instance is not protected: no, right or wrong credentials all answer.
    for auth in (None, (account.sid, account.auth_token), (account.sid, "wrong")):
        for suffix in ("", ".wav"):
            wav = httpx.get(url + suffix, auth=auth, trust_env=False)
            assert (wav.status_code, wav.headers["content-type"]) == (200, "audio/x-wav"), (suffix, auth)
            assert wav.content == state.media_bytes(rec, "wav")
            with wave.open(io.BytesIO(wav.content)) as parsed:
                assert (parsed.getnchannels(), parsed.getframerate(), parsed.getsampwidth()) == (1, 8000, 2)
        mp3 = httpx.get(f"{url}.mp3", auth=auth, trust_env=False)
        assert (mp3.status_code, mp3.headers["content-type"]) == (200, "audio/mpeg")
        assert mp3.content == state.media_bytes(rec, "mp3") and mp3.content.startswith(b"ID3")
        xml = httpx.get(f"{url}.xml", auth=auth, trust_env=False)
        assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
        root = SafeET.fromstring(xml.text)
        assert root.tag == "TwilioResponse"
        node = root.find("Recording")
        assert node is not None and [c.tag for c in node] == LEGACY_FIELDS
        assert (node.findtext("Sid"), node.findtext("CallSid")) == (rec.sid, rec.call_sid)
    assert httpx.get(f"{url}.json", trust_env=False).status_code == 404
    elsewhere = httpx.get(f"{server.base_url}/2008-08-01/Accounts/AC{'9' * 32}/Recordings/{rec.sid}",
                          trust_env=False)
    assert SafeET.fromstring(elsewhere.text).findtext("RestException/Status") == "404"
    listing = httpx.get(f"{server.base_url}/2008-08-01/Accounts/{account.sid}/Recordings", trust_env=False)
    assert listing.status_code == 401


def test_legacy_delete_is_204_without_a_body_and_the_recording_is_gone(
        server: StandinServer, http: httpx.Client, state: StandinState, account: Account) -> None:
    kept, doomed = state.add_legacy(), state.add_legacy()
    path = f"/2008-08-01/Accounts/{account.sid}/Recordings/{doomed.sid}"
    assert httpx.delete(f"{server.base_url}{path}", trust_env=False).status_code == 401
    deleted = http.delete(path)
    assert (deleted.status_code, deleted.content) == (204, b"")
    for suffix in ("", ".wav", ".mp3", ".xml"):
        assert http.get(path + suffix).status_code == 404, suffix
    listing = SafeET.fromstring(http.get(f"/2008-08-01/Accounts/{account.sid}/Recordings").text)
    assert [r.findtext("Sid") for r in listing.iter("Recording")] == [kept.sid]
    assert http.delete(path).status_code == 404


def test_legacy_date_filters_bound_at_midnight_and_other_keys_are_not_filters(
        http: httpx.Client, state: StandinState, account: Account) -> None:
    days = {day: state.add_legacy(date_created=datetime(2009, 7, day, 10, 0, tzinfo=UTC)) for day in (3, 4, 5, 6)}
    path = f"/2008-08-01/Accounts/{account.sid}/Recordings"

    def sids(query: str) -> list[str]:
        return [r.findtext("Sid") or "" for r in SafeET.fromstring(http.get(f"{path}?{query}").text).iter("Recording")]

    # The document's own example: "between midnight Jul 04th, 2009 and midnight Jul 06th, 2009".
    assert sids("DateCreated>=2009-07-04&DateCreated<=2009-07-06") == [days[5].sid, days[4].sid]
    assert sids("DateCreated=2009-07-06") == [days[6].sid]
    assert sids("DateCreated>=2009-07-06") == [days[6].sid]
    # The 2008 list documents no CallSid filter.
    assert len(sids(f"CallSid={days[3].call_sid}")) == 4


# -- (6) auth and isolation ----------------------------------------------------

def test_wrong_or_missing_credentials_are_401(server: StandinServer, state: StandinState, account: Account) -> None:
    rec = state.add_voice()
    url = f"{server.base_url}/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}.json"
    for auth in [(account.sid, "wrong"), ("ACnobody", account.auth_token), None]:
        denied = httpx.get(url, auth=auth, trust_env=False)
        assert denied.status_code == 401
        assert denied.json()["code"] == 20003
        assert denied.headers["WWW-Authenticate"].startswith("Basic")
    legacy = httpx.get(f"{server.base_url}/2008-08-01/Accounts/{account.sid}/Recordings", trust_env=False)
    assert SafeET.fromstring(legacy.text).findtext("RestException/Status") == "401"


def test_other_accounts_recordings_are_404(server: StandinServer, state: StandinState, account: Account) -> None:
    other = state.add_account()
    voice, video, media = state.add_voice(), state.add_video(), state.add_media()
    with httpx.Client(base_url=server.base_url, auth=(other.sid, other.auth_token), trust_env=False) as intruder:
        for path in (f"/2010-04-01/Accounts/{account.sid}/Recordings/{voice.sid}.json",
                     f"/2010-04-01/Accounts/{other.sid}/Recordings/{voice.sid}.json",
                     f"/2010-04-01/Accounts/{account.sid}/Recordings/{voice.sid}.wav",
                     f"/v1/Recordings/{video.sid}", f"/v1/MediaRecordings/{media.sid}"):
            missing = intruder.get(path)
            assert (missing.status_code, missing.json()["code"]) == (404, 20404), path
        assert intruder.get("/v1/Recordings").json()["recordings"] == []


# -- filters, paging links, control API, CLI --------------------------------------

def test_voice_filters_soft_delete_and_relative_page_links(http: httpx.Client, state: StandinState,
                                                           account: Account) -> None:
    old = state.add_voice(date_created=datetime(2024, 1, 2, 10, 0, tzinfo=UTC))
    sids = [state.add_voice().sid for _ in range(3)]
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings.json"
    first = http.get(path, params={"PageSize": "2"}).json()
    assert first["next_page_uri"] == f"{path}?PageSize=2&Page=1&PageToken=PA{sids[1]}"
    assert (first["start"], first["end"], first["previous_page_uri"]) == (0, 1, None)
    second = http.get(first["next_page_uri"]).json()
    assert [r["sid"] for r in second["recordings"]] == [sids[0], old.sid]
    assert second["next_page_uri"] is None and second["start"] == 2
    assert [r["sid"] for r in http.get(path, params={"DateCreated": "2024-01-02"}).json()["recordings"]] == [old.sid]
    assert len(http.get(path, params={"DateCreated>": "2024-01-03"}).json()["recordings"]) == 3
    assert len(http.get(f"{path}?DateCreated<=2024-01-02T10:00:00Z").json()["recordings"]) == 1
    assert http.get(path, params={"CallSid": old.call_sid}).json()["recordings"][0]["sid"] == old.sid
    # "DateCreated<=YYYY-MM-DD ... on or before midnight of this date": that day itself is out.
    assert http.get(path, params={"DateCreated<": "2024-01-02"}).json()["recordings"] == []
    assert [r["sid"] for r in http.get(path, params={"DateCreated<": "2024-01-03"}).json()["recordings"]] == [old.sid]
    assert http.delete(f"/2010-04-01/Accounts/{account.sid}/Recordings/{old.sid}.json").status_code == 204
    assert http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{old.sid}.json").status_code == 404
    assert old.sid not in [r["sid"] for r in http.get(path).json()["recordings"]]
    soft = http.get(path, params={"IncludeSoftDeleted": "true", "CallSid": old.call_sid}).json()
    assert [(r["sid"], r["status"]) for r in soft["recordings"]] == [(old.sid, "deleted")]


def test_voice_scoped_lists_take_only_their_documented_filters_and_scoped_delete(
        http: httpx.Client, state: StandinState, account: Account) -> None:
    rec = state.add_voice(conference_sid="CF" + "d" * 32)
    other = state.add_voice(conference_sid=rec.conference_sid)
    root = f"/2010-04-01/Accounts/{account.sid}"
    conference = f"{root}/Conferences/{rec.conference_sid}/Recordings"
    # CallSid is a filter of the account-wide list only; the Conferences list documents none.
    listed = http.get(f"{conference}.json", params={"CallSid": rec.call_sid}).json()["recordings"]
    assert {r["sid"] for r in listed} == {rec.sid, other.sid}
    in_call = f"{root}/Calls/{rec.call_sid}/Recordings/{rec.sid}.json"
    deleted = http.delete(in_call)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert http.get(in_call).status_code == 404
    soft = http.get(f"{root}/Recordings/{rec.sid}.json", params={"IncludeSoftDeleted": "true"}).json()
    assert soft["status"] == "deleted"
    assert http.delete(f"{conference}/{other.sid}.json").status_code == 204
    assert http.delete(f"{conference}/{other.sid}.json").status_code == 404


def test_video_list_leaves_out_deleted_recordings_unless_status_deleted(http: httpx.Client,
                                                                        state: StandinState) -> None:
    live, gone = state.add_video(), state.add_video()
    assert http.delete(f"/v1/Recordings/{gone.sid}").status_code == 204
    def names(**p: str) -> list[str]:
        return [r["sid"] for r in http.get("/v1/Recordings", params=p).json()["recordings"]]
    assert names() == [live.sid]
    assert names(Status="deleted") == [gone.sid]
    # "The metadata for the Recording is preserved ... and its Status is set to deleted."
    assert http.get(f"/v1/Recordings/{gone.sid}").json()["status"] == "deleted"
    assert http.get(f"/v1/Recordings/{gone.sid}/Media").status_code == 404


def test_video_and_media_filters_and_absolute_page_links(server: StandinServer, http: httpx.Client,
                                                         state: StandinState) -> None:
    a = state.add_video(date_created=datetime(2024, 5, 1, tzinfo=UTC))
    b = state.add_video(type="video", status="processing", room_sid=a.room_sid)
    c = state.add_video()
    def names(body: dict[str, Any]) -> list[str]:
        return [r["sid"] for r in body["recordings"]]
    assert names(http.get("/v1/Recordings", params={"Status": "processing"}).json()) == [b.sid]
    assert names(http.get("/v1/Recordings", params={"MediaType": "audio"}).json()) == [c.sid, a.sid]
    assert names(http.get("/v1/Recordings", params={"GroupingSid": a.room_sid}).json()) == [b.sid, a.sid]
    assert names(http.get("/v1/Recordings", params={"DateCreatedBefore": "2024-05-02T00:00:00Z"}).json()) == [a.sid]
    assert names(http.get(f"/v1/Rooms/{a.room_sid}/Recordings",
                          params={"DateCreatedAfter": "2024-06-01T00:00:00Z"}).json()) == [b.sid]
    meta = http.get("/v1/Recordings", params={"PageSize": "1"}).json()["meta"]
    assert meta["next_page_url"] == f"{server.base_url}/v1/Recordings?PageSize=1&Page=1&PageToken=PA{c.sid}"
    m1, m2 = state.add_media(), state.add_media(status="failed")
    def media(**p: str) -> list[str]:
        return [r["sid"] for r in http.get("/v1/MediaRecordings", params=p).json()["media_recordings"]]
    assert media() == [m2.sid, m1.sid] and media(Order="asc") == [m1.sid, m2.sid]
    assert media(Status="failed") == [m2.sid] and media(ProcessorSid=m1.processor_sid) == [m1.sid]


def test_control_api_drives_state_without_auth(server: StandinServer, state: StandinState) -> None:
    with httpx.Client(base_url=server.base_url, trust_env=False) as control:
        acct = control.post("/_standin/accounts", json={"auth_token": "tok"}).json()
        made = control.post("/_standin/recordings/voice", json={"account_sid": acct["sid"], "duration": 9})
        assert made.status_code == 201 and made.json()["duration"] == "9"
        assert state.get("voice", made.json()["sid"]).duration == 9
        assert control.post("/_standin/recordings/nope", json={}).status_code == 404
        assert control.post("/_standin/faults", json={"path_regex": "/v1/", "status": 429,
                                                      "retry_after": "2"}).status_code == 201
        assert httpx.get(f"{server.base_url}/v1/Recordings", auth=(acct["sid"], "tok"),
                         trust_env=False).headers["Retry-After"] == "2"
        assert control.post("/_standin/latency", json={"seconds": 0.05}).json() == {"seconds": 0.05}
        assert control.post("/_standin/media_size", json={"bytes": 4096}).json() == {"bytes": 4096}
        assert (state.latency_s, state.media_size) == (0.05, 4096)
        log = control.get("/_standin/requests").json()
        assert [(e["path"], e["status"], e["username"]) for e in log] == [("/v1/Recordings", 429, acct["sid"])]
        assert control.post("/_standin/reset").json() == {"ok": True}
        assert (state.latency_s, state.media_size, state.request_log) == (0.0, 2048, [])
        assert acct["sid"] in state.accounts


def test_command_line_runs_standalone() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    account, token = "AC" + "c" * 32, "secret-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standin", "--port", str(port), "--account", account, "--token", token,
         "--media-bytes", "100"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}"
        made = _post_when_ready(f"http://127.0.0.1:{port}/_standin/recordings/voice", deadline_s=10)
        wav = httpx.get(f"http://127.0.0.1:{port}/2010-04-01/Accounts/{account}/Recordings/{made['sid']}.wav",
                        auth=(account, token), trust_env=False)
        assert (wav.status_code, len(wav.content)) == (200, 100)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # waits, and closes both pipes


def _post_when_ready(url: str, deadline_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            made: dict[str, Any] = httpx.post(url, json={}, trust_env=False).json()
            return made
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # polling with a deadline, until the child process listens


def test_voice_video_and_media_delete_keep_the_metadata_as_deleted_and_the_media_goes(
        http: httpx.Client, state: StandinState, account: Account) -> None:
    voice, video, media = state.add_voice(), state.add_video(), state.add_media()
    cases = [
        (f"/2010-04-01/Accounts/{account.sid}/Recordings/{voice.sid}.json",
         f"/2010-04-01/Accounts/{account.sid}/Recordings/{voice.sid}.wav"),
        (f"/v1/Recordings/{video.sid}", f"/v1/Recordings/{video.sid}/Media"),
        (f"/v1/MediaRecordings/{media.sid}", f"/v1/MediaRecordings/{media.sid}/Media"),
    ]
    for instance, media_path in cases:
        assert http.get(media_path).status_code in (200, 302)
        deleted = http.delete(instance)
        assert (deleted.status_code, deleted.content) == (204, b""), instance
        assert http.get(media_path).status_code == 404, media_path
        assert http.delete(instance).status_code == 404, instance  # a second DELETE
    # Voice: metadata kept for IncludeSoftDeleted; video: with Status=deleted; media: fetchable.
    assert http.get(cases[0][0]).status_code == 404
    assert http.get(cases[0][0], params={"IncludeSoftDeleted": "true"}).json()["status"] == "deleted"
    soft = http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings.json", params={"IncludeSoftDeleted": "true"}).json()
    assert [(r["sid"], r["status"]) for r in soft["recordings"]] == [(voice.sid, "deleted")]
    assert http.get(cases[1][0]).json()["status"] == "deleted"
    assert http.get("/v1/Recordings").json()["recordings"] == []
    assert [r["sid"] for r in http.get("/v1/Recordings", params={"Status": "deleted"}).json()["recordings"]] == [video.sid]
    assert http.get(cases[2][0]).json()["status"] == "deleted"


def test_a_recordings_transcriptions_list_with_their_status(http: httpx.Client, state: StandinState, account: Account) -> None:
    rec = state.add_voice()
    state.add_transcription(rec.sid, "completed")
    state.add_transcription(rec.sid, "in-progress")
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings/{rec.sid}/Transcriptions.json"
    body = http.get(path).json()
    assert [t["status"] for t in body["transcriptions"]] == ["completed", "in-progress"]
    assert {t["recording_sid"] for t in body["transcriptions"]} == {rec.sid}
    assert http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/RE{'0' * 32}/Transcriptions.json").status_code == 404
