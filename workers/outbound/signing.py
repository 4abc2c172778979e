"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, one per secret."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(secrets: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: space-separated, one signature per secret, so a receiver
    holding either the old or the new secret verifies it during a rotation."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode("ascii") for secret in secrets
    )


def headers(secrets: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }
