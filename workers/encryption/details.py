"""A recording's `encryption_details`, checked and decoded: the public key SID, the encrypted CEK, the IV."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from workers.failures import PermanentError

IV_BYTES = 12
_PUBLIC_KEY_SID = re.compile(r"CR[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class EncryptionDetails:
    public_key_sid: str
    # The 32-byte content key, encrypted to the public key with RSA-OAEP (SHA-256).
    encrypted_cek: bytes = b""
    iv: bytes = b""

    def __repr__(self) -> str:
        return f"EncryptionDetails(public_key_sid={self.public_key_sid!r})"


def _b64(value: Any, name: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError(f"encryption_details.{name} is not base64") from None


def parse(metadata: dict[str, Any]) -> EncryptionDetails | None:
    """None for a recording stored in the clear (Twilio sends null)."""
    raw = metadata.get("encryption_details")
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise PermanentError("encryption_details is not an object")
    sid = str(raw.get("encryption_public_key_sid") or "")
    if not _PUBLIC_KEY_SID.fullmatch(sid):
        raise PermanentError("encryption_details names no public key SID (CR…)")
    iv = _b64(raw.get("encryption_iv"), "encryption_iv")
    if len(iv) != IV_BYTES:
        raise PermanentError(f"encryption_details.encryption_iv is {len(iv)} bytes, not {IV_BYTES}")
    return EncryptionDetails(sid, _b64(raw.get("encryption_cek"), "encryption_cek"), iv)
