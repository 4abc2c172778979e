"""Legacy recordings (API 2008-08-01): XML metadata (`{sid}.xml`) and lists, media from the API host."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from receiver.kernel.events import Status
from workers.twilio_rest import calls as rest_calls
from workers.twilio_rest import paging
from workers.twilio_rest.sources import Listed, MediaLocation, details
from workers.twilio_rest.sources.legacy_xml import recording, recordings_page
from workers.twilio_rest.timestamps import parse

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account
    from receiver.kernel.events import RecordingEvent
    from workers.twilio_rest.paging import Backoff
    from workers.twilio_rest.rest_context import RestContext

MAX_PAGE_SIZE = 1000


def _root(api_base_url: str, account_sid: str) -> str:
    return f"{api_base_url}/2008-08-01/Accounts/{account_sid}/Recordings"


def listed(item: dict[str, Any]) -> Listed:
    # The 2008 API lists only recordings that exist, each one finished: all are "completed".
    return Listed(
        sid=str(item.get("sid")),
        status=Status.COMPLETED,
        date_created=parse(item.get("date_created")),
        related={"call_sid": str(item["call_sid"])} if item.get("call_sid") else {},
        details=details({"Duration": item.get("duration")}),
    )


class LegacyApi:
    def fetch(self, ctx: RestContext, account: Account, sid: str) -> dict[str, Any]:
        # Only `.xml` is the XML form: the bare URL, like `.wav`, is the WAV audio itself.
        url = f"{_root(ctx.settings.twilio_api_base_url, account.sid)}/{sid}.xml"
        return recording(rest_calls.get(ctx.rest.client(account), url, accept=rest_calls.XML).text)

    def media(self, ctx: RestContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation:
        return self.media_from_sids(ctx, account, event)

    def media_from_sids(self, ctx: RestContext, account: Account, event: RecordingEvent) -> MediaLocation:
        fmt = ctx.settings.media_format
        url = f"{_root(ctx.settings.twilio_api_base_url, account.sid)}/{event.sid}.{fmt}"
        # Twilio does not protect the 2008 instance with credentials; sending them anyway is
        # harmless, and keeps one download path for every API-host media URL.
        return MediaLocation(url=url, auth=account.rest_credentials(), ext=fmt)

    def delete(self, ctx: RestContext, account: Account, sid: str) -> None:
        # "Returns an HTTP 204 (No Content), with no body"; errors come as XML <RestException>.
        url = f"{_root(ctx.settings.twilio_api_base_url, account.sid)}/{sid}"
        rest_calls.delete(ctx.rest.client(account), url, accept=rest_calls.XML)

    def list_recordings(
        self, ctx: RestContext, account: Account, since: datetime | None, backoff: Backoff, until: datetime | None = None
    ) -> Iterator[Listed]:
        # Pages are numbered (no tokens in 2008); DateCreated>= takes a day, so a few older ones come too.
        url = _root(ctx.settings.twilio_api_base_url, account.sid)
        params: dict[str, Any] = {"PageSize": min(ctx.settings.reconcile_page_size, MAX_PAGE_SIZE)}
        if since is not None:
            params["DateCreated>"] = since.date().isoformat()
        if until is not None:
            # A date bound is its midnight: the next day's keeps all of `until`'s day in.
            params["DateCreated<"] = (until.date() + timedelta(days=1)).isoformat()
        client = ctx.rest.client(account)
        page = 0
        while True:
            response = paging.get_with_backoff(client, url, {**params, "Page": page}, backoff, accept=rest_calls.XML)
            listing = recordings_page(response.text or "")
            for item in listing.recordings:
                yield listed(item)
            page = listing.page + 1
            if not listing.recordings or page >= listing.numpages:
                return
