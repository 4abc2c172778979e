"""One POST to an endpoint, under the media downloads' address rules, never following a redirect."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from workers.failures import PermanentError, TransientError
from workers.twilio_rest.egress import Egress, parse, where

EXCERPT_CHARS = 300
_READ_AT_MOST = 4096


@dataclass(frozen=True)
class Answer:
    """What one attempt met: an HTTP status (None: no answer), how long it took, a bounded excerpt."""

    status: int | None
    seconds: float
    excerpt: str
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(egress: Egress, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    started = time.monotonic()
    try:
        request = egress.request_for(parse(url, "webhook to"), None, "webhook to", method="POST", content=body, extra=headers)
        response = egress.client.send(request, stream=True, follow_redirects=False)
    except (PermanentError, TransientError) as exc:
        return Answer(None, time.monotonic() - started, str(exc)[:EXCERPT_CHARS])
    except httpx.HTTPError as exc:
        # The exception's text can carry the URL; say what kind of failure it was and where.
        return Answer(None, time.monotonic() - started, f"{type(exc).__name__} from {where(httpx.URL(url))}")
    try:
        excerpt = _excerpt(response)
    finally:
        response.close()
    if response.is_redirect:
        excerpt = f"redirect to elsewhere (not followed): {excerpt}"[:EXCERPT_CHARS]
    return Answer(response.status_code, time.monotonic() - started, excerpt, retry_after(response.headers.get("retry-after")))


def _excerpt(response: httpx.Response) -> str:
    taken = b""
    try:
        for chunk in response.iter_raw():
            taken += chunk
            if len(taken) >= _READ_AT_MOST:
                break
    except httpx.HTTPError:
        pass  # what arrived is excerpt enough
    return " ".join(taken.decode("utf-8", "replace").split())[:EXCERPT_CHARS]


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
