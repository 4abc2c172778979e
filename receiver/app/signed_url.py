"""Rebuilds the exact URL Twilio signed, from configuration and the raw request line."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


@dataclass(slots=True)
class RequestLine:
    """What arrived, undecoded: the raw path and query bytes and the headers that name the host."""

    scheme: str
    host: str | None
    raw_path: bytes
    query_string: bytes
    forwarded_proto: str | None = None
    forwarded_host: str | None = None


def signed_url(line: RequestLine, public_base_url: str | None, trust_proxy_headers: bool) -> str:
    """The URL as Twilio saw it.

    `request.url` would decode the path and trust whatever Host header arrived, so it is never
    used: the scheme and host come from PUBLIC_BASE_URL (or, when the operator says so, from the
    proxy's X-Forwarded-* headers) and the path and query are the raw bytes exactly as sent.
    """
    path = line.raw_path.decode("latin-1")
    query = line.query_string.decode("latin-1")
    tail = f"{path}?{query}" if query else path
    if public_base_url:
        return public_base_url + tail
    if trust_proxy_headers and line.forwarded_host:
        scheme = (line.forwarded_proto or line.scheme).split(",")[0].strip()
        host = line.forwarded_host.split(",")[0].strip()
        return f"{scheme}://{host}{tail}"
    return f"{line.scheme}://{line.host or 'localhost'}{tail}"


def redact(url: str) -> str:
    """The URL without user:password (Twilio allows basic auth in callback URLs) or query values."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = "&".join(pair.split("=", 1)[0] + "=…" for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
