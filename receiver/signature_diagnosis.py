"""After a signature mismatch, finds which part of the URL Twilio most likely signed differently.

Behind a proxy the usual answer is the scheme, host or port; this saves the operator from
guessing. Only URL variants are tried, with the same secrets: nothing secret is ever logged.
"""

from __future__ import annotations

from typing import Iterator, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from receiver.form import Params
from receiver.signed_url import RequestLine, redact


def _variants(url: str, line: RequestLine) -> Iterator[tuple[str, str]]:
    scheme, netloc, path, query, _ = urlsplit(url)
    swap = "http" if scheme == "https" else "https"
    yield "scheme", urlunsplit((swap, netloc, path, query, ""))
    for header_host in filter(None, (line.host, line.forwarded_host)):
        if header_host != netloc:
            for s in (scheme, swap):
                yield "host", urlunsplit((s, header_host, path, query, ""))
    host = netloc.split(":")[0]
    if line.host and ":" in line.host:
        yield "port", urlunsplit((scheme, f"{host}:{line.host.rsplit(':', 1)[1]}", path, query, ""))
    if unquote(path) != path:
        yield "path", urlunsplit((scheme, netloc, unquote(path), query, ""))
    yield "path", urlunsplit((scheme, netloc, path.rstrip("/") if path.endswith("/") else path + "/", query, ""))
    if query:
        yield "query", urlunsplit((scheme, netloc, path, "", ""))


def diagnose(
    url: str,
    line: RequestLine,
    params: Params | str,
    signature: str,
    algorithm: str | None,
    secrets: Sequence[tuple[str, SecretStr]],
) -> str:
    """A short, secret-free sentence naming the part that most likely differs."""
    validators = [RequestValidator(secret.get_secret_value()) for _, secret in secrets]
    try:
        for part, variant in _variants(url, line):
            if any(v.validate(variant, params, signature, algorithm) for v in validators):
                return f"{part}: Twilio signed {redact(variant)}, we rebuilt {redact(url)}"
        if isinstance(params, Params) and any(v.validate(url, {}, signature, algorithm) for v in validators):
            return "parameter set: Twilio signed the URL without these body parameters"
    except (UnicodeError, ValueError, TypeError):
        return "request cannot be verified"
    return "token or parameters: no URL variant matches; check the auth token and that nothing rewrote the body"
