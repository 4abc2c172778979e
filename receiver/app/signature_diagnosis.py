"""After a signature mismatch, finds which part of the URL Twilio most likely signed differently.

Behind a proxy the usual answer is the scheme, host or port; this saves the operator from
guessing. Only URL variants are tried, with the same secrets: nothing secret is ever logged.
Each diagnosis re-checks the signature a dozen times, so a forger must not be able to order them
at will: only callback-sized bodies are diagnosed, and only so many a second (`Doctor`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from receiver.app.form import Params
from receiver.app.signed_url import RequestLine, redact


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


# Twilio's callbacks are under 4 KB with a few dozen fields; a bigger body is not a misrouted one.
DIAGNOSE_MAX_BYTES = 4096
DIAGNOSE_MAX_FIELDS = 64


class DiagnosisBudget:
    """A token bucket: `rate` diagnoses a second on average, at most max(rate, 1) in a burst."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0) if rate > 0 else 0.0
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Doctor:
    """Explains signature failures within a budget; one per process, shared by every route."""

    def __init__(self, per_second: float) -> None:
        self.budget = DiagnosisBudget(per_second)
        self.per_second = per_second

    def explain(
        self,
        url: str,
        line: RequestLine,
        params: Params | str,
        body_bytes: int,
        signature: str,
        algorithm: str | None,
        secrets: Sequence[tuple[str, SecretStr]],
    ) -> str:
        """What `diagnose` says, or why it was not asked (the log line says which)."""
        fields = len(params) if isinstance(params, Params) else 0
        if body_bytes > DIAGNOSE_MAX_BYTES or fields > DIAGNOSE_MAX_FIELDS:
            return f"diagnosis skipped: {body_bytes} bytes, {fields} fields is larger than any callback"
        if not self.budget.take():
            return f"diagnosis skipped: over {self.per_second:g} a second"
        return diagnose(url, line, params, signature, algorithm, secrets)
