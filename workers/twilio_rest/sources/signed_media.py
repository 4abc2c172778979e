"""Resolves a v1 `/Media` resource to the short-lived signed URL Twilio redirects to, and vets that URL.

The signed URL is fetched without Twilio credentials (the storage behind it refuses requests
that carry two kinds of auth). It must be on one of the hosts the operator configured for Twilio
(a local mock), or HTTPS to a public address (`workers.twilio_rest.egress`, which checks it again, resolved,
with every redirect, when it is downloaded). Its query is a credential in itself: it is never logged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from twilio.http.response import Response
from twilio.rest import Client

from workers.failures import PermanentError, TransientError
from workers.settings import WorkerSettings
from workers.twilio_rest import egress
from workers.twilio_rest.calls import get
from workers.twilio_rest.sources import MediaLocation


def configured_origins(settings: WorkerSettings) -> frozenset[egress.Origin]:
    return egress.origins((settings.twilio_api_base_url, settings.twilio_video_base_url, settings.twilio_media_base_url))


def _redirect_to(response: Response) -> str | None:
    try:
        body = json.loads(response.text or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("redirect_to"), str):
        return str(body["redirect_to"])
    headers = response.headers or {}
    location = headers.get("Location") or headers.get("location")
    return str(location) if location else None


def vet(url: str, origins: frozenset[egress.Origin]) -> str:
    """Early, without DNS: a literal internal address or plain HTTP off the configured hosts fails here."""
    what = "signed media URL on"
    egress.screen(egress.parse(url, what), origins, what)
    return url


def resolve(client: Client, media_url: str, settings: WorkerSettings) -> str:
    """GET `media_url` (on a configured host, with Twilio auth) and return the vetted signed URL."""
    response = get(client, media_url)
    target = _redirect_to(response)
    if not target:
        raise PermanentError(f"{urlsplit(media_url).path} answered {response.status_code} without redirect_to")
    return vet(target, configured_origins(settings))


def location(client: Client, media_url: str, settings: WorkerSettings, *, status: Any, what: str, ext: str,
             expected: int | None) -> MediaLocation | None:
    """Where a video or media recording's media is, by its status at Twilio: still processing is
    worth a retry; deleted or failed means the metadata is all there is."""
    if status == "processing":
        raise TransientError(f"{what} is still processing at Twilio")
    if status != "completed":
        return None
    return MediaLocation(url=resolve(client, media_url, settings), auth=None, ext=ext, expected_bytes=expected)
