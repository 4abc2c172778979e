"""Checks X-Twilio-Signature with twilio's RequestValidator and says why a check failed."""

from __future__ import annotations

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


def _candidates(
    settings_header: str | None,
    tokens: Sequence[tuple[str, SecretStr]],
    shared_keys: Mapping[str, SecretStr],
) -> tuple[str | None, list[tuple[str, SecretStr]]] | str:
    """The algorithm and secrets to try, or a reason there is nothing to try."""
    if not settings_header:
        return None, list(tokens)
    algorithm = get_signature_algorithm(settings_header)
    key_id = _shared_key_id(settings_header)
    if key_id is None:
        return algorithm, list(tokens)
    secret = shared_keys.get(key_id)
    if secret is None:
        return "unknown shared key id"
    return algorithm, [(f"shared-key:{key_id}", secret)]


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
    plan = _candidates(settings_header, tokens, shared_keys or {})
    if isinstance(plan, str):
        return Verdict(False, plan)
    algorithm, secrets = plan
    if not secrets:
        return Verdict(False, "no auth token configured for this account")
    for label, secret in secrets:
        try:
            valid = RequestValidator(secret.get_secret_value()).validate(url, params, signature, algorithm)
        except (UnicodeError, ValueError, TypeError) as exc:
            return Verdict(False, f"request cannot be verified: {type(exc).__name__}")
        if valid:
            return Verdict(True, "valid", label)
    return Verdict(False, "signature does not match")
