"""Streams a recording's media from Twilio as chunks, refusing a short or empty one before its end."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from workers.failures import TransientError
from workers.twilio_rest.egress import Egress

CHUNK_BYTES = 64 * 1024


def _raise_for_status(response: httpx.Response) -> None:
    """httpx's own message quotes the full URL, and a signed media URL's query is a credential.
    The Host header names the host even when the request went to its address."""
    if response.is_error:
        request = response.request
        url = request.url.copy_with(query=None, netloc=request.headers["host"].encode("ascii"))
        raise httpx.HTTPStatusError(f"media answered {response.status_code} from {url}", request=response.request, response=response)


def chunks(egress: Egress, url: str, auth: tuple[str, str] | None, expected: int | None = None) -> Generator[bytes]:
    """The media's bytes; the size must match Content-Length (and `expected` when known). The
    checks raise before the generator ends, so a store abandons the write instead of committing it."""
    size = 0
    with egress.stream(url, auth) as response:
        _raise_for_status(response)
        declared = response.headers.get("content-length")
        for chunk in response.iter_bytes(CHUNK_BYTES):
            size += len(chunk)
            yield chunk
    if declared is not None and int(declared) != size:
        raise TransientError(f"media cut short: {size} of {declared} bytes")
    if expected is not None and expected != size:
        raise TransientError(f"media size {size} differs from the {expected} bytes Twilio reported")
    if size == 0:
        raise TransientError("media is empty")
