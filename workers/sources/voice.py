"""Voice recordings through API 2010-04-01, fetched with the twilio client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twilio.rest import Client

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
