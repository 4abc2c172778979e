"""Voice recordings through API 2010-04-01, fetched with the twilio client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from twilio.rest import Client

from receiver.kernel.events import Status
from workers.twilio_rest import calls as rest_calls
from workers.twilio_rest import paging
from workers.twilio_rest.sources import Listed, MediaLocation, details
from workers.twilio_rest.timestamps import iso_z, parse

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account
    from receiver.kernel.events import RecordingEvent
    from workers.twilio_rest.paging import Backoff
    from workers.twilio_rest.rest_context import RestContext

FIELDS = (
    "sid", "account_sid", "call_sid", "conference_sid", "status", "duration", "channels", "source",
    "error_code", "start_time", "date_created", "date_updated", "price", "price_unit", "track", "uri",
    "api_version", "media_url", "encryption_details",
)
MAX_PAGE_SIZE = 1000

# paused, stopped, processing and in-progress are not final yet: None.
_STATUSES = {"completed": Status.COMPLETED, "absent": Status.ABSENT, "failed": Status.FAILED, "deleted": Status.DELETED}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def fetch(client: Client, account_sid: str, sid: str) -> dict[str, Any]:
    recording = client.api.v2010.accounts(account_sid).recordings(sid).fetch()
    return {name: _plain(getattr(recording, name, None)) for name in FIELDS}


def media_url(api_base_url: str, account_sid: str, sid: str, fmt: str) -> str:
    """Built from the configured host and the SIDs, never from a URL a request carried."""
    return f"{api_base_url}/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.{fmt}"


def listed(item: dict[str, Any]) -> Listed:
    related = {name: str(item[name]) for name in ("call_sid", "conference_sid") if item.get(name)}
    error_code = item.get("error_code")
    return Listed(
        sid=str(item.get("sid")),
        status=_STATUSES.get(str(item.get("status"))),
        date_created=parse(item.get("date_created")),
        related=related,
        error_code=str(error_code) if error_code not in (None, "", 0, "0") else None,
        details=details({
            "RecordingDuration": item.get("duration"), "RecordingChannels": item.get("channels"),
            "RecordingSource": item.get("source"), "ErrorCode": error_code,
        }),
    )


def transcriptions_in_progress(ctx: RestContext, account: Account, sid: str) -> int:
    """How many of the recording's transcriptions Twilio is still working on (deleting the
    recording before their callback makes Twilio report warning 13618)."""
    url = f"{ctx.settings.twilio_api_base_url}/2010-04-01/Accounts/{account.sid}/Recordings/{sid}/Transcriptions.json"
    body = rest_calls.get_json(ctx.rest.client(account), url, {"PageSize": MAX_PAGE_SIZE})
    items = body.get("transcriptions")
    return sum(1 for item in items if isinstance(item, dict) and item.get("status") == "in-progress") if isinstance(items, list) else 0


class VoiceApi:
    def fetch(self, ctx: RestContext, account: Account, sid: str) -> dict[str, Any]:
        return fetch(ctx.rest.client(account), account.sid, sid)

    def media(self, ctx: RestContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation:
        return self.media_from_sids(ctx, account, event)

    def media_from_sids(self, ctx: RestContext, account: Account, event: RecordingEvent) -> MediaLocation:
        fmt = ctx.settings.media_format
        url = media_url(ctx.settings.twilio_api_base_url, account.sid, event.sid, fmt)
        return MediaLocation(url=url, auth=account.rest_credentials(), ext=fmt, may_be_encrypted=True)

    def delete(self, ctx: RestContext, account: Account, sid: str) -> None:
        # Twilio keeps the metadata 40 days (status "deleted", listed with IncludeSoftDeleted); the media goes.
        url = f"{ctx.settings.twilio_api_base_url}/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.json"
        rest_calls.delete(ctx.rest.client(account), url)

    def list_recordings(
        self, ctx: RestContext, account: Account, since: datetime | None, backoff: Backoff, until: datetime | None = None
    ) -> Iterator[Listed]:
        # Soft-deleted ones too, so a recording deleted before we archived it is seen and reported.
        base = ctx.settings.twilio_api_base_url
        params: dict[str, Any] = {"IncludeSoftDeleted": "true", "PageSize": min(ctx.settings.reconcile_page_size, MAX_PAGE_SIZE)}
        if since is not None:
            # On the wire "DateCreated%3E=…", which Twilio reads as DateCreated>=.
            params["DateCreated>"] = iso_z(since)
        if until is not None:
            # "DateCreated%3C=…": on or before, to the second.
            params["DateCreated<"] = iso_z(until)
        url = f"{base}/2010-04-01/Accounts/{account.sid}/Recordings.json"
        for page in paging.walk(ctx.rest.client(account), url, params, paging.next_2010(base), backoff):
            for item in paging.records(page, "recordings"):
                yield listed(item)
