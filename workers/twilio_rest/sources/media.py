"""Media recordings (media v1, `KV…`) through the client's generic request(): twilio-python 9.x dropped them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from receiver.kernel.events import Status
from workers.twilio_rest import calls as rest_calls
from workers.twilio_rest import paging
from workers.twilio_rest.sources import Listed, MediaLocation, details, media_ext, positive_int, signed_media
from workers.twilio_rest.timestamps import parse

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account
    from receiver.kernel.events import RecordingEvent
    from workers.twilio_rest.paging import Backoff
    from workers.twilio_rest.rest_context import RestContext

FIELDS = (
    "sid", "account_sid", "status", "date_created", "date_updated", "duration", "format", "resolution",
    "processor_sid", "source_sid", "media_size", "status_callback", "url",
)
MAX_PAGE_SIZE = 1000

_STATUSES = {"completed": Status.COMPLETED, "failed": Status.FAILED, "deleted": Status.DELETED}


def listed(item: dict[str, Any]) -> Listed:
    source_sid = str(item.get("source_sid") or "")
    return Listed(
        sid=str(item.get("sid")),
        status=_STATUSES.get(str(item.get("status"))),
        date_created=parse(item.get("date_created")),
        related={"room_sid": source_sid} if source_sid.startswith("RM") else {},
        details=details({
            "ProcessorSid": item.get("processor_sid"), "SourceSid": item.get("source_sid"),
            "Format": item.get("format"), "Duration": item.get("duration"), "MediaSize": item.get("media_size"),
        }),
    )


class MediaApi:
    def fetch(self, ctx: RestContext, account: Account, sid: str) -> dict[str, Any]:
        url = f"{ctx.settings.twilio_media_base_url}/v1/MediaRecordings/{sid}"
        body = rest_calls.get_json(ctx.rest.client(account), url)
        return {name: body.get(name) for name in FIELDS}

    def media_from_sids(self, ctx: RestContext, account: Account, event: RecordingEvent) -> MediaLocation | None:
        return None  # the media's address comes from a signed redirect, its format from the metadata

    def media(self, ctx: RestContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation | None:
        url = f"{ctx.settings.twilio_media_base_url}/v1/MediaRecordings/{event.sid}/Media"
        return signed_media.location(
            ctx.rest.client(account), url, ctx.settings, status=metadata.get("status"), what="media recording",
            ext=media_ext(metadata.get("format"), "mp4"), expected=positive_int(metadata.get("media_size")),
        )

    def delete(self, ctx: RestContext, account: Account, sid: str) -> None:
        # As the seed documents it; Twilio has since dropped it from its descriptions (the job
        # reads a 404 or 410 here as "nothing to delete at Twilio").
        rest_calls.delete(ctx.rest.client(account), f"{ctx.settings.twilio_media_base_url}/v1/MediaRecordings/{sid}")

    def list_recordings(
        self, ctx: RestContext, account: Account, since: datetime | None, backoff: Backoff, until: datetime | None = None
    ) -> Iterator[Listed]:
        # The list has no date filter: newest first, and stop paging at the first one before `since`
        # (those after `until` are paged through and left to the caller's own filter).
        base = ctx.settings.twilio_media_base_url
        params = {"Order": "desc", "PageSize": min(ctx.settings.reconcile_page_size, MAX_PAGE_SIZE)}
        client = ctx.rest.client(account)
        for page in paging.walk(client, f"{base}/v1/MediaRecordings", params, paging.next_v1(base), backoff):
            for item in paging.records(page, "media_recordings"):
                found = listed(item)
                if since is not None and found.date_created is not None and found.date_created < since:
                    return
                yield found
