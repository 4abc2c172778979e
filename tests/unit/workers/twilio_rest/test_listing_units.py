"""The reconciler's small parts on known inputs: paging links, 2008 XML, watermark maths, URL vetting, back-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from receiver.kernel.events import Origin, Source, Status
from workers.commands.settings import Settings
from workers.failures import PermanentError
from workers.reconcile.job import next_slot
from workers.reconcile.report import Report, Row
from workers.reconcile.watermarks import Tracker
from workers.twilio_rest.paging import Backoff, next_2010, next_v1, rebase, records
from workers.twilio_rest.sources import legacy_xml, media_ext, signed_media
from workers.twilio_rest.sources import video as video_api
from workers.twilio_rest.sources import voice as voice_api
from workers.twilio_rest.timestamps import iso_z, parse, parse_since

AC = "AC" + "a" * 32
RE = "RE" + "b" * 32


def test_v1_next_page_on_twilios_host_is_moved_onto_the_configured_base() -> None:
    link = "https://video.twilio.com/v1/Recordings?PageSize=2&Page=1&PageToken=PAxyz"
    assert rebase(link, "http://127.0.0.1:9000") == "http://127.0.0.1:9000/v1/Recordings?PageSize=2&Page=1&PageToken=PAxyz"
    assert rebase(link, "https://egress.example/twilio-video") == "https://egress.example/twilio-video/v1/Recordings?PageSize=2&Page=1&PageToken=PAxyz"
    # Already on the configured host (even behind a path prefix): kept as it is.
    assert rebase("https://egress.example/twilio-video/v1/Recordings?Page=1", "https://egress.example/twilio-video") == (
        "https://egress.example/twilio-video/v1/Recordings?Page=1"
    )


def test_next_links_per_api() -> None:
    v2010 = {"next_page_uri": f"/2010-04-01/Accounts/{AC}/Recordings.json?PageSize=2&Page=1", "recordings": []}
    assert next_2010("https://api.example")(v2010) == f"https://api.example/2010-04-01/Accounts/{AC}/Recordings.json?PageSize=2&Page=1"
    assert next_2010("https://api.example")({"next_page_uri": None}) is None
    v1 = {"meta": {"next_page_url": "https://media.twilio.com/v1/MediaRecordings?Page=1", "key": "media_recordings"}}
    assert next_v1("http://localhost:1")(v1) == "http://localhost:1/v1/MediaRecordings?Page=1"
    assert next_v1("http://localhost:1")({"meta": {"next_page_url": None}}) is None


def test_records_follow_meta_key_or_the_resource_name() -> None:
    assert records({"meta": {"key": "media_recordings"}, "media_recordings": [{"sid": "x"}]}, "recordings") == [{"sid": "x"}]
    assert records({"recordings": [{"sid": "y"}], "next_page_uri": None}, "recordings") == [{"sid": "y"}]
    with pytest.raises(PermanentError):
        records({"meta": {"key": "recordings"}}, "recordings")


LEGACY_PAGE = f"""<?xml version="1.0" encoding="UTF-8"?>
<TwilioResponse><Recordings page="1" numpages="3" pagesize="2" total="5" start="2" end="3">
<Recording><Sid>{RE}</Sid><AccountSid>{AC}</AccountSid><CallSid>CA{'c' * 32}</CallSid><Duration>14</Duration>
<DateCreated>Tue, 05 Mar 2024 10:00:00 +0000</DateCreated><DateUpdated>Tue, 05 Mar 2024 10:00:14 +0000</DateUpdated>
<Uri>/2008-08-01/Accounts/{AC}/Recordings/{RE}</Uri></Recording>
</Recordings></TwilioResponse>"""


def test_legacy_xml_page_and_recording() -> None:
    page = legacy_xml.recordings_page(LEGACY_PAGE)
    assert (page.page, page.numpages) == (1, 3)
    [rec] = page.recordings
    assert rec["sid"] == RE and rec["duration"] == 14 and rec["date_created"] == "2024-03-05T10:00:00+00:00"
    single = LEGACY_PAGE.replace('<Recordings page="1" numpages="3" pagesize="2" total="5" start="2" end="3">', "").replace("</Recordings>", "")
    assert legacy_xml.recording(single)["call_sid"] == "CA" + "c" * 32


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        "<TwilioResponse><Recording><Sid>&lol2;</Sid></Recording></TwilioResponse>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><TwilioResponse><Recording><Sid>&xxe;</Sid></Recording></TwilioResponse>',
        "<TwilioResponse><Recording>",
        "<Other/>",
    ],
)
def test_legacy_xml_refuses_entities_and_junk(body: str) -> None:
    with pytest.raises(PermanentError):
        legacy_xml.recording(body)


def test_tracker_keeps_an_overlap_and_waits_for_recordings_in_flight() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    tracker = Tracker(timedelta(hours=1), hold_floor=now - timedelta(days=2))
    assert tracker.next_mark() is None
    tracker.saw(now - timedelta(minutes=5), pending=False)
    tracker.saw(now - timedelta(minutes=50), pending=False)
    assert tracker.next_mark() == now - timedelta(minutes=65)
    tracker.saw(now - timedelta(hours=3), pending=True)
    assert tracker.next_mark() == now - timedelta(hours=3)
    # Stuck for longer than the lookback window: no longer holds the mark back.
    stuck = Tracker(timedelta(hours=1), hold_floor=now - timedelta(days=2))
    stuck.saw(now, pending=False)
    stuck.saw(now - timedelta(days=3), pending=True)
    assert stuck.next_mark() == now - timedelta(hours=1)


def test_dates_in_both_twilio_styles() -> None:
    assert parse("Fri, 14 Oct 2016 21:56:34 +0000") == datetime(2016, 10, 14, 21, 56, 34, tzinfo=UTC)
    assert parse("2015-07-30T20:00:00Z") == datetime(2015, 7, 30, 20, tzinfo=UTC)
    assert parse("soon") is None and parse(None) is None
    assert parse_since("2024-01-02") == datetime(2024, 1, 2, tzinfo=UTC)
    assert parse_since("2024-01-02T03:04:05+02:00") == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert iso_z(datetime(2024, 1, 2, 3, 4, 5, 999, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_signed_media_urls_are_vetted() -> None:
    origins = signed_media.configured_origins(
        Settings(twilio_api_base_url="http://127.0.0.1:8010", twilio_video_base_url="http://127.0.0.1:8010")
    )
    assert signed_media.vet("https://bucket.s3.amazonaws.com/x?Signature=1", origins)
    assert signed_media.vet("http://127.0.0.1:8010/_signed/RT1?Signature=1", origins)
    for url in ("http://bucket.s3.amazonaws.com/x", "http://127.0.0.1:8011/x", "https://u:p@example.com/x", "file:///etc/passwd"):
        with pytest.raises(PermanentError) as refused:
            signed_media.vet(url, origins)
        assert "Signature" not in str(refused.value)


def test_media_extension_from_metadata_is_safe_for_a_file_name() -> None:
    assert media_ext("MKA", "bin") == "mka"
    assert media_ext("../../x", "bin") == "bin" and media_ext(None, "mp4") == "mp4"


def test_backoff_honours_retry_after_and_is_bounded() -> None:
    backoff = Backoff(base=1.0, attempts=3, cap=30.0, sleep=lambda _: None)
    first = backoff.delay(0, None)
    assert first is not None and 0.5 <= first <= 1.0
    honoured = backoff.delay(1, 10.0)
    assert honoured is not None and 10.0 <= honoured <= 12.5
    assert backoff.delay(3, None) is None  # out of attempts
    assert backoff.delay(0, 3600.0) is None  # Twilio asks for longer than a pass should wait


def test_next_slot_is_the_following_boundary() -> None:
    assert next_slot(1_000_000.0, 600) == 1_000_200
    assert next_slot(1_000_200.0, 600) == 1_000_800


def test_rest_items_become_callback_shaped_listings() -> None:
    voice = voice_api.listed({"sid": RE, "status": "absent", "error_code": 16101, "call_sid": "CA" + "c" * 32,
                              "conference_sid": None, "date_created": "Fri, 14 Oct 2016 21:56:34 +0000", "duration": "0"})
    assert (voice.status, voice.error_code, voice.related) == (Status.ABSENT, "16101", {"call_sid": "CA" + "c" * 32})
    assert voice_api.listed({"sid": RE, "status": "processing"}).status is None
    video = video_api.listed({"sid": "RT" + "d" * 32, "status": "completed", "grouping_sids": {"room_sid": "RM" + "e" * 32},
                              "date_created": "2015-07-30T20:00:00Z", "size": 23, "container_format": "mka"})
    assert video.related == {"room_sid": "RM" + "e" * 32} and video.details["Size"] == "23"
    event = video.event(Source.VIDEO, AC)
    assert event.origin is Origin.RECONCILER and event.status is Status.COMPLETED


def test_report_renders_what_it_saw_found_and_queued() -> None:
    report = Report(started=datetime(2024, 5, 1, tzinfo=UTC))
    row = Row("voice", AC, since=datetime(2024, 4, 29, tzinfo=UTC), seen=3, missing=1, queued=1)
    row.found.append((RE, "completed", "queued"))
    report.rows.append(row)
    report.rows.append(Row("video", AC, error="transient: HTTP 503"))
    text = report.render()
    assert f"queued     voice {RE} completed" in text and "error      transient: HTTP 503" in text
    assert not report.ok and text.endswith("FAILED")
    summary = report.summary()
    assert summary["queued"] == "1" and summary["errors"] == "1" and float(summary["at"]) == report.started.timestamp()
    assert json.loads(summary["sources"])["video"]["errors"] == [f"{AC}: transient: HTTP 503"]
