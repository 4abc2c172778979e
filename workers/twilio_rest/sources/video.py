"""Video room recordings (video v1, `RT…`): typed fetch, signed-URL media, account-wide list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from receiver.kernel.events import Status
from workers.twilio_rest import calls as rest_calls
from workers.twilio_rest import paging
from workers.twilio_rest.sources import Listed, MediaLocation, details, media_ext, positive_int, signed_media
from workers.twilio_rest.timestamps import iso_z, parse, plain

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account
    from receiver.kernel.events import RecordingEvent
    from workers.twilio_rest.paging import Backoff
    from workers.twilio_rest.rest_context import RestContext

FIELDS = (
    "sid", "account_sid", "status", "date_created", "source_sid", "size", "type", "duration",
    "container_format", "codec", "grouping_sids", "track_name", "offset", "media_external_location",
    "status_callback", "url",
)
# /v1/Recordings caps PageSize at 100 (the per-room list allows 1000, but is one room only).
MAX_PAGE_SIZE = 100

_STATUSES = {"completed": Status.COMPLETED, "failed": Status.FAILED, "deleted": Status.DELETED}


def listed(item: dict[str, Any]) -> Listed:
    raw_grouping = item.get("grouping_sids")
    grouping: dict[str, Any] = raw_grouping if isinstance(raw_grouping, dict) else {}
    related = {name: str(grouping[name]) for name in ("room_sid", "participant_sid") if grouping.get(name)}
    return Listed(
        sid=str(item.get("sid")),
        status=_STATUSES.get(str(item.get("status"))),
        date_created=parse(item.get("date_created")),
        related=related,
        details=details({
            "SourceSid": item.get("source_sid"), "TrackName": item.get("track_name"),
            "Container": item.get("container_format"), "Codec": item.get("codec"), "Type": item.get("type"),
            "Size": item.get("size"), "Duration": item.get("duration"),
        }),
    )


class VideoApi:
    def fetch(self, ctx: RestContext, account: Account, sid: str) -> dict[str, Any]:
        recording = ctx.rest.client(account).video.v1.recordings(sid).fetch()
        return {name: plain(getattr(recording, name, None)) for name in FIELDS}

    def media_from_sids(self, ctx: RestContext, account: Account, event: RecordingEvent) -> MediaLocation | None:
        return None  # the media's address comes from a signed redirect, its format from the metadata

    def media(self, ctx: RestContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation | None:
        url = f"{ctx.settings.twilio_video_base_url}/v1/Recordings/{event.sid}/Media"
        return signed_media.location(
            ctx.rest.client(account), url, ctx.settings, status=metadata.get("status"), what="video recording",
            ext=media_ext(metadata.get("container_format"), "mka"), expected=positive_int(metadata.get("size")),
        )

    def delete(self, ctx: RestContext, account: Account, sid: str) -> None:
        # Twilio deletes the media and keeps the metadata 30 days with status "deleted".
        rest_calls.delete(ctx.rest.client(account), f"{ctx.settings.twilio_video_base_url}/v1/Recordings/{sid}")

    def list_recordings(
        self, ctx: RestContext, account: Account, since: datetime | None, backoff: Backoff, until: datetime | None = None
    ) -> Iterator[Listed]:
        # No Status filter: in-flight recordings must be seen too, to hold the watermark back.
        # Without one Twilio leaves out the deleted ones, which would never be queued anyway.
        base = ctx.settings.twilio_video_base_url
        params: dict[str, Any] = {"PageSize": min(ctx.settings.reconcile_page_size, MAX_PAGE_SIZE)}
        if since is not None:
            params["DateCreatedAfter"] = iso_z(since)
        if until is not None:
            # DateCreatedBefore is exclusive: the next second keeps `until` itself in.
            params["DateCreatedBefore"] = iso_z(until.replace(microsecond=0) + timedelta(seconds=1))
        client = ctx.rest.client(account)
        for page in paging.walk(client, f"{base}/v1/Recordings", params, paging.next_v1(base), backoff):
            for item in paging.records(page, "recordings"):
                yield listed(item)
