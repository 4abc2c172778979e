"""Checks X-Twilio-Signature with twilio's RequestValidator and says why a check failed."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Mapping, Sequence

from pydantic import SecretStr
from twilio.request_validator import RequestValidator, get_signature_algorithm

from receiver.form import Params

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"


@dataclass(frozen=True, slots=True)
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
            validator = RequestValidator(secret.get_secret_value())
            # The usual case first, with one HMAC: a form body signed over exactly this URL.
            # Everything else (port variants, bodySHA256) goes through the full `validate`.
            if isinstance(params, Params) and hmac.compare_digest(
                validator.compute_signature(url, params, algorithm), signature
            ):
                return Verdict(True, "valid", label)
            if validator.validate(url, params, signature, algorithm):
                return Verdict(True, "valid", label)
        except (UnicodeError, ValueError, TypeError) as exc:
            return Verdict(False, f"request cannot be verified: {type(exc).__name__}")
    return Verdict(False, MISMATCH)
