"""Walks Twilio's list endpoints: each API's next-page link, kept on our configured host, and 429 back-off.

2010-04-01 pages link to the next one with a relative `next_page_uri`; v1 pages with an
absolute `meta.next_page_url` on Twilio's own host, which is moved onto the configured base URL
(a mock, an egress proxy) so that no request ever leaves the hosts the operator chose.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.http.response import Response
from twilio.rest import Client

from receiver.kernel import logs
from workers import failures
from workers.twilio_rest.calls import JSON, json_object, raise_error

log = logs.get("workers.twilio_rest.paging")


@dataclass
class Backoff:
    """Bounded waits with jitter between attempts of one listing, never sooner than Retry-After.

    A pass runs inside a job or the CLI, where a short sleep is fine; a longer wait than `cap`
    gives up instead, and the next pass picks the listing up again from its watermark.
    """

    base: float
    attempts: int = 5
    cap: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    waits: int = field(default=0, init=False)

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        if attempt >= self.attempts or (retry_after is not None and retry_after > self.cap):
            return None
        ceiling = min(self.cap, self.base * 2**attempt)
        wait = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            # Jitter after Retry-After too, but never past the cap: no wait is longer than `cap`.
            wait = max(wait, retry_after, min(retry_after + random.uniform(0, retry_after / 4), self.cap))
        return wait

    def wait(self, seconds: float) -> None:
        self.waits += 1
        self.sleep(seconds)


def _retry_after(response: Response) -> str | None:
    headers = response.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    return str(value) if value is not None else None


def get_with_backoff(client: Client, url: str, params: dict[str, Any] | None, backoff: Backoff, accept: str = JSON) -> Response:
    """GET, retrying what is transient (429, 5xx, network) within the back-off's bounds."""
    attempt = 0
    while True:
        try:
            response = client.request("GET", url, params=params, headers={"Accept": accept})
        except (requests.ConnectionError, requests.Timeout) as exc:
            wait = backoff.delay(attempt, None)
            if wait is None:
                raise
            reason = type(exc).__name__
        else:
            if response.status_code < 400:
                return response
            failure = failures.from_status(response.status_code, f"HTTP {response.status_code}", _retry_after(response))
            wait = backoff.delay(attempt, failure.retry_after) if failure.kind == "transient" else None
            if wait is None:
                raise_error(response, url)
            reason = failure.reason
        log.warning("listing backs off", path=urlsplit(url).path, reason=reason, seconds=round(wait, 2))
        backoff.wait(wait)
        attempt += 1


def rebase(link: str, base_url: str) -> str:
    """`link` on the configured host: kept when it already is, else its path and query moved there."""
    target, base = urlsplit(link), urlsplit(base_url)
    if not target.netloc:
        return base_url.rstrip("/") + "/" + link.lstrip("/")
    if (target.scheme, target.netloc) == (base.scheme, base.netloc):
        return link
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + target.path, target.query, ""))


def next_2010(base_url: str) -> Callable[[dict[str, Any]], str | None]:
    def find(page: dict[str, Any]) -> str | None:
        uri = page.get("next_page_uri")
        return rebase(uri, base_url) if isinstance(uri, str) and uri else None

    return find


def next_v1(base_url: str) -> Callable[[dict[str, Any]], str | None]:
    def find(page: dict[str, Any]) -> str | None:
        meta = page.get("meta")
        link = meta.get("next_page_url") if isinstance(meta, dict) else None
        return rebase(link, base_url) if isinstance(link, str) and link else None

    return find


def records(page: dict[str, Any], default_key: str) -> list[dict[str, Any]]:
    """A page's records: under `meta.key` in v1, under the resource's name in 2010-04-01."""
    meta = page.get("meta")
    key = meta.get("key", default_key) if isinstance(meta, dict) else default_key
    items = page.get(key)
    if not isinstance(items, list):
        raise failures.PermanentError(f"list page has no {key!r} list")
    return [item for item in items if isinstance(item, dict)]


def walk(
    client: Client, url: str, params: dict[str, Any], next_link: Callable[[dict[str, Any]], str | None], backoff: Backoff
) -> Iterator[dict[str, Any]]:
    """Every page, first to last; lazily, so a caller that has seen enough stops the paging."""
    fetched: set[str] = set()
    current: str | None = url
    query: dict[str, Any] | None = params
    while current:
        if current in fetched:
            raise failures.PermanentError("list paging loops: a next-page link repeats an earlier page")
        fetched.add(current)
        page = json_object(get_with_backoff(client, current, query, backoff), current)
        yield page
        current, query = next_link(page), None
