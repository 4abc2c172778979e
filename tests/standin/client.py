"""Builds a real twilio.rest.Client whose API, Video and Media calls go to the stand-in."""

from __future__ import annotations

from typing import Any


def twilio_client(base_url: str, username: str, password: str, account_sid: str | None = None,
                  timeout: float | None = None) -> Any:
    """A twilio 9.x Client pointed at `base_url` (e.g. StandinServer.base_url).

    Each Twilio domain object keeps its host in a plain `base_url` attribute, which is the
    supported override; edge/region are cleared because they rewrite hostnames (and would
    mangle 127.0.0.1).  Media v1 has no client package in twilio 9.13: use
    `client.request("GET", f"{base_url}/v1/MediaRecordings/{sid}")`.
    """
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client = Client(username, password, account_sid=account_sid,
                    http_client=TwilioHttpClient(timeout=timeout))
    client.edge = None
    client.region = None
    client.api.base_url = base_url
    client.video.base_url = base_url
    return client
