"""A recording's media in the console: played and downloaded by a signed-in operator only, local
files with one byte Range (If-Range honoured), S3 through a short presigned link, no path from a user."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis import Redis

from console.settings import ConsoleSettings
from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID
from tests.standin.media import wav_header
from tests.support.console.helpers import TOKEN, sid, sign_in
from tests.support.s3_server import Bucket, bucket, isolate_aws, s3_server
from tests.support.servers import free_port
from workers.commands.settings import Settings
from workers.storage import open_store, record
from workers.storage.seam import Keys, Store

__all__ = ["bucket", "s3_server"]  # fixtures, used by name

BODY = wav_header(16000, 1) + bytes(range(256)) * 62 + bytes(128)  # one second of 8 kHz 16-bit mono
METADATA = {"sid": "", "duration": "12", "channels": 2, "source": "OutboundAPI",
            "date_created": "Fri, 27 Nov 2026 17:01:02 +0000", "start_time": "2026-11-27T17:00:50Z",
            "uri": "/2010-04-01/Accounts/AC/Recordings/RE.json", "subresource_uris": {"x": "y"}}


def archive(settings: Settings, redis: Redis, n: int, ext: str = "wav", body: bytes = BODY) -> str:
    """Archive one voice recording as a worker does: media, commit record, catalog fields."""
    rec_sid = sid("RE", n)
    store: Store = open_store(settings)
    try:
        place = Keys.of("voice", ACCOUNT_SID, rec_sid, ext)
        stored = store.put_media(place.media, [body])
        event = {"source": "voice", "sid": rec_sid, "status": "completed", "account_sid": ACCOUNT_SID,
                 "origin": "callback", "occurred_at": "Fri, 27 Nov 2026 17:00:50 +0000", "error_code": None,
                 "related": {"call_sid": sid("CA", n)}, "details": {"RecordingDuration": "12"}}
        kept = record.build({**METADATA, "sid": rec_sid}, event, record.media_entry(place.media, stored, ext))
        store.put_record(place.record, record.encode(kept))
        fields: dict[str, str | int | float] = {
            "source": "voice", "sid": rec_sid, "account_sid": ACCOUNT_SID, "status": "completed",
            "media_path": store.where(place.media), "metadata_path": store.where(place.record),
            "media_bytes": stored.size, "archived_at": time.time(), "duration": "12",
            "date_created": str(METADATA["date_created"]),
        }
        redis.hset(keys.recording_key("voice", rec_sid), mapping=fields)  # type: ignore[arg-type]
    finally:
        store.close()
    return rec_sid


def test_a_signed_in_operator_gets_the_whole_file_inline_or_as_a_download(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 1)
    client = sign_in(start_console(settings))
    whole = client.get(f"/recordings/voice/{rec}/media")
    assert whole.status_code == 200 and whole.content == BODY
    assert whole.headers["content-type"] == "audio/wav" and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"] == f'inline; filename="{rec}.wav"'
    download = client.get(f"/recordings/voice/{rec}/media", params={"download": "1"})
    assert download.content == BODY and download.headers["content-disposition"] == f'attachment; filename="{rec}.wav"'


def test_one_range_is_answered_206_and_several_or_a_bad_one_416(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 2)
    client = sign_in(start_console(settings))
    path, size = f"/recordings/voice/{rec}/media", len(BODY)
    for header, (first, last) in {"bytes=10-19": (10, 19), "bytes=-5": (size - 5, size - 1), "bytes=100-": (100, size - 1)}.items():
        part = client.get(path, headers={"range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}" and part.content == BODY[first:last + 1]
    for header in ("bytes=0-1,5-6", "bytes=0-1, 0-1", f"bytes={size}-", "bytes=9-3", "bytes=abc", "items=0-1"):
        refused = client.get(path, headers={"range": header})
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{size}"


def test_if_range_serves_the_range_only_for_the_file_as_it_is(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 3)
    client = sign_in(start_console(settings))
    path = f"/recordings/voice/{rec}/media"
    first = client.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for validator in (etag, modified):
        assert client.get(path, headers={"range": "bytes=0-9", "if-range": validator}).status_code == 206
    for stale in ('"changed"', f"W/{etag}", formatdate(0, usegmt=True)):
        whole = client.get(path, headers={"range": "bytes=0-9", "if-range": stale})
        assert whole.status_code == 200 and whole.content == BODY, stale
    # A stale If-Range means "send it all": even a range that would be refused is not looked at.
    assert client.get(path, headers={"range": "bytes=0-1,4-5", "if-range": '"changed"'}).status_code == 200


def test_without_sign_in_the_media_sends_to_login_and_the_api_says_401(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 4)
    base = start_console(settings)
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        for query in ("", "?download=1"):
            refused = anonymous.get(f"/recordings/voice/{rec}/media{query}", headers={"range": "bytes=0-9"})
            assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next=")
            assert BODY[:10] not in refused.content
        assert anonymous.get(f"/api/recordings/voice/{rec}").status_code == 401
        wrong = anonymous.get(f"/recordings/voice/{rec}/media", headers={"authorization": "Bearer not-the-token"})
        assert wrong.status_code in (303, 401) and BODY[:44] not in wrong.content
        # The API names the media's address; its bearer token fetches it.
        bearer = {"authorization": f"Bearer {TOKEN}"}
        assert anonymous.get(f"/api/recordings/voice/{rec}", headers=bearer).json()["media_url"] == f"/recordings/voice/{rec}/media"
        assert anonymous.get(f"/recordings/voice/{rec}/media", headers=bearer).content == BODY


@pytest.mark.parametrize("fields", [
    {"media_path": "/etc/passwd"},
    {"media_path": "/data/voice/../../../etc/passwd.wav"},
    {"account_sid": "../../../etc"},
    {"media_path": "/data/{sid}.exe"},
    {"media_path": ""},
])
def test_the_file_comes_only_from_the_key_layout_never_from_a_path(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
    fields: dict[str, str],
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 5)
    redis.hset(keys.recording_key("voice", rec), mapping={k: v.format(sid=rec) for k, v in fields.items()})
    client = sign_in(start_console(settings))
    answer = client.get(f"/recordings/voice/{rec}/media")
    assert answer.status_code == 404 and b"root:" not in answer.content and BODY[:44] not in answer.content
    for bad in ("/recordings/voice/..%2F..%2Fetc%2Fpasswd/media", "/recordings/nope/" + rec + "/media",
                f"/recordings/voice/{rec.lower()}/media"):
        assert client.get(bad).status_code == 404, bad


def test_the_page_plays_it_offers_the_download_and_shows_twilio_s_metadata_in_utc(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 6)
    client = sign_in(start_console(settings))
    page = client.get(f"/recordings/voice/{rec}")
    html = page.text
    assert f'<audio controls preload="metadata" src="/recordings/voice/{rec}/media">' in html
    assert f'href="/recordings/voice/{rec}/media?download=1" download' in html
    assert "media-src 'self'" in page.headers["content-security-policy"]
    twilio = html.split('id="twilio-metadata"')[1].split("</section>")[0]
    assert "<th>Duration</th><td class=\"mono\">12 s</td>" in twilio and "<th>Channels</th><td class=\"mono\">2</td>" in twilio
    assert "OutboundAPI" in twilio and "2026-11-27 17:01:02 UTC" in twilio and "2026-11-27 17:00:50 UTC" in twilio
    assert "subresource_uris" not in twilio and "/2010-04-01/" not in twilio
    heard = html.split('id="callback"')[1].split("</section>")[0]
    assert "2026-11-27 17:00:50 UTC" in heard and "RecordingDuration" in heard and "12 s" in heard
    catalog = html.split('id="metadata"')[1]
    assert "2026-11-27 17:01:02 UTC" in catalog and "Fri, 27 Nov" not in html


def test_a_video_track_gets_a_video_element_and_its_matroska_type(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 7, ext="mkv", body=b"\x1a\x45\xdf\xa3" + bytes(60))
    client = sign_in(start_console(settings))
    assert f'<video controls preload="metadata" src="/recordings/voice/{rec}/media">' in client.get(f"/recordings/voice/{rec}").text
    assert client.get(f"/recordings/voice/{rec}/media").headers["content-type"] == "video/x-matroska"


@pytest.fixture
def s3_console(console_settings: Callable[..., Settings], bucket: Bucket) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return console_settings(storage_url=bucket.url, storage_endpoint_url=bucket.server.endpoint, **overrides)

    return make


def test_s3_media_is_a_redirect_to_a_link_that_lapses_as_set_and_serves_ranges(
    s3_console: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis, bucket: Bucket,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = s3_console(admin_media_link_seconds=120)
    rec = archive(settings, redis, 8)
    client = sign_in(start_console(settings))
    sent = client.get(f"/recordings/voice/{rec}/media")
    assert sent.status_code == 307 and sent.headers["cache-control"] == "no-store"
    link = httpx.URL(sent.headers["location"])
    assert link.host == "127.0.0.1" and link.path == f"/{bucket.name}/{bucket.prefix}/voice/{ACCOUNT_SID}/{rec}.wav"
    assert link.params["X-Amz-Expires"] == "120" and "X-Amz-Signature" in link.params
    with httpx.Client(timeout=10) as browser:  # no session, no credentials: the link alone
        part = browser.get(link, headers={"range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == BODY[10:20]
        assert part.headers["content-type"] == "audio/wav"
        whole = browser.get(link)
        assert whole.content == BODY and whole.headers["content-disposition"] == f'inline; filename="{rec}.wav"'
        download = httpx.URL(client.get(f"/recordings/voice/{rec}/media?download=1").headers["location"])
        assert browser.get(download).headers["content-disposition"] == f'attachment; filename="{rec}.wav"'
    page = client.get(f"/recordings/voice/{rec}")
    assert f"media-src 'self' {bucket.server.endpoint}" in page.headers["content-security-policy"]
    assert "12 s" in page.text.split('id="twilio-metadata"')[1]  # the record, read from the bucket
    with httpx.Client(base_url=client.base_url, timeout=10) as anonymous:
        refused = anonymous.get(f"/recordings/voice/{rec}/media")
        assert refused.status_code == 303 and "location" in refused.headers and "X-Amz" not in refused.headers["location"]
    logged = capfd.readouterr()
    assert "media link issued" in logged.out + logged.err
    assert link.params["X-Amz-Signature"] not in logged.out + logged.err


@pytest.mark.parametrize("seconds", ["0", "-1", "604801", "soon"])
def test_the_link_lifetime_is_refused_outside_s3_s_bounds(monkeypatch: pytest.MonkeyPatch, seconds: str) -> None:
    monkeypatch.setenv("ADMIN_MEDIA_LINK_SECONDS", seconds)
    with pytest.raises(ValidationError, match="admin_media_link_seconds"):
        ConsoleSettings()


def test_the_link_lifetime_defaults_to_fifteen_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_MEDIA_LINK_SECONDS", raising=False)
    assert ConsoleSettings().admin_media_link_seconds == 900


def test_storage_the_console_cannot_read_is_a_line_on_the_page_not_an_error_page(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    isolate_aws(monkeypatch, tmp_path, credentials=None)
    settings = console_settings(storage_url="s3://somewhere/archive", storage_endpoint_url=f"http://127.0.0.1:{free_port()}")
    rec = sid("RE", 9)
    place = Keys.of("voice", ACCOUNT_SID, rec, "wav")
    redis.hset(keys.recording_key("voice", rec), mapping={
        "source": "voice", "sid": rec, "account_sid": ACCOUNT_SID, "status": "completed",
        "media_path": f"s3://somewhere/archive/{place.media}", "metadata_path": f"s3://somewhere/archive/{place.record}",
    })
    client = sign_in(start_console(settings))
    page = client.get(f"/recordings/voice/{rec}")
    assert page.status_code == 200
    assert "the archive record could not be read: no AWS credentials found" in page.text and "Traceback" not in page.text
    media = client.get(f"/recordings/voice/{rec}/media")
    assert media.status_code == 503 and "the media link could not be made: no AWS credentials found" in media.text


def test_no_player_for_media_the_commit_record_does_not_name(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    settings = console_settings()
    rec = archive(settings, redis, 10)
    (settings.storage_path / "voice" / ACCOUNT_SID / f"{rec}.json").unlink()
    client = sign_in(start_console(settings))
    page = client.get(f"/recordings/voice/{rec}").text
    assert "<audio" not in page and "Download" not in page and 'id="twilio-metadata"' not in page
