"""Checks X-Twilio-Signature with twilio's RequestValidator and says why a check failed."""

from __future__ import annotations

import binascii
import functools
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, RequestValidator, get_signature_algorithm

from receiver.app.form import Params

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"


@dataclass(slots=True)
class Verdict:
    ok: bool
    reason: str
    # Which secret matched ("primary", "secondary", "shared-key:<id>"), never the secret itself.
    matched: str | None = None


def _shared_key_id(settings_header: str) -> str | None:
    for part in settings_header.split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "key":
            return value.strip()
    return None


MISMATCH = "signature does not match"
_DIGESTS = {HMAC_SHA1: "sha1", HMAC_SHA256: "sha256"}


def form_signature(key: bytes, url: str, params: Params, algorithm: str | None) -> str:
    """`RequestValidator.compute_signature` for a form body, in fewer steps.

    Same string signed, same result (a property test holds it to twilio's own); the HMAC is one
    C call and nothing is re-encoded per request. Profiled, the validator's version was a tenth
    of a callback's cost. Unknown algorithms raise ValueError, as twilio's does.
    """
    digest = _DIGESTS.get((algorithm or HMAC_SHA1).upper())
    if digest is None:
        raise ValueError("unsupported webhook signature algorithm")
    parts = [url]
    for name in sorted(params):
        values = params[name]
        for value in values if len(values) == 1 else sorted(set(values)):
            parts.append(name)
            parts.append(value)
    mac = _keyed(key, digest).copy()
    mac.update("".join(parts).encode("utf-8"))
    return binascii.b2a_base64(mac.digest(), newline=False).decode("ascii")


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes, digest: str) -> hmac.HMAC:
    """An HMAC with the key already mixed in: copying it is cheaper than keying one per request."""
    return hmac.new(key, digestmod=digest)


def algorithm_of(settings_header: str | None) -> str | None:
    return get_signature_algorithm(settings_header) if settings_header else None


def candidate_secrets(
    settings_header: str | None,
    tokens: Sequence[tuple[str, SecretStr]],
    shared_keys: Mapping[str, SecretStr] | None,
) -> list[tuple[str, SecretStr]]:
    """Auth tokens, or the one SharedKey the settings header names (empty if we do not know it)."""
    key_id = _shared_key_id(settings_header) if settings_header else None
    if key_id is None:
        return list(tokens)
    secret = (shared_keys or {}).get(key_id)
    return [(f"shared-key:{key_id}", secret)] if secret is not None else []


def verify(
    url: str,
    params: Params | str,
    signature: str | None,
    settings_header: str | None,
    tokens: Sequence[tuple[str, SecretStr]],
    shared_keys: Mapping[str, SecretStr] | None = None,
) -> Verdict:
    """Try each secret in turn; any input the validator cannot digest is a failure, not a crash."""
    if not signature:
        return Verdict(False, "missing X-Twilio-Signature header")
    algorithm = algorithm_of(settings_header)
    secrets = candidate_secrets(settings_header, tokens, shared_keys)
    if not secrets:
        key_named = settings_header and _shared_key_id(settings_header)
        return Verdict(False, "unknown shared key id" if key_named else "no auth token configured for this account")
    for label, secret in secrets:
        try:
            token = secret.get_secret_value()
            # The usual case first, with one HMAC: a form body signed over exactly this URL.
            # Everything else (port variants, bodySHA256) goes through twilio's full `validate`.
            if isinstance(params, Params) and hmac.compare_digest(
                form_signature(token.encode("utf-8"), url, params, algorithm), signature
            ):
                return Verdict(True, "valid", label)
            if RequestValidator(token).validate(url, params, signature, algorithm):
                return Verdict(True, "valid", label)
        except (UnicodeError, ValueError, TypeError) as exc:
            return Verdict(False, f"request cannot be verified: {type(exc).__name__}")
    return Verdict(False, MISMATCH)
