"""Voice recordings through API 2010-04-01, fetched with the twilio client."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from twilio.rest import Client

from workers.sources import MediaLocation

if TYPE_CHECKING:
    from receiver.accounts import Account
    from receiver.events import RecordingEvent
    from workers.context import WorkerContext

FIELDS = (
    "sid", "account_sid", "call_sid", "conference_sid", "status", "duration", "channels", "source",
    "error_code", "start_time", "date_created", "date_updated", "price", "price_unit", "track", "uri",
    "api_version", "media_url",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def fetch(client: Client, account_sid: str, sid: str) -> dict[str, Any]:
    recording = client.api.v2010.accounts(account_sid).recordings(sid).fetch()
    return {name: _plain(getattr(recording, name, None)) for name in FIELDS}


def media_url(api_base_url: str, account_sid: str, sid: str, fmt: str) -> str:
    """Built from the configured host and the SIDs, never from a URL a request carried."""
    return f"{api_base_url}/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.{fmt}"


class VoiceApi:
    def fetch(self, ctx: WorkerContext, account: Account, sid: str) -> dict[str, Any]:
        return fetch(ctx.rest.client(account), account.sid, sid)

    def media(self, ctx: WorkerContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation:
        fmt = ctx.settings.media_format
        url = media_url(ctx.settings.twilio_api_base_url, account.sid, event.sid, fmt)
        return MediaLocation(url=url, auth=account.rest_credentials(), ext=fmt)
