"""An independent implementation of Twilio's webhook signing, written from Twilio's documentation.

It deliberately shares no code with the project or with twilio-python, so a test that signs with
it proves the receiver agrees with Twilio, not merely with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def _sign(secret: str, url: str, params: Iterable[tuple[str, str]], digest: str) -> str:
    """HMAC over the full URL followed by each POST parameter name and value, sorted by name."""
    data = url
    for name, value in sorted(params, key=lambda pair: (pair[0], pair[1])):
        data += name + value
    mac = hmac.new(secret.encode("utf-8"), data.encode("utf-8"), getattr(hashlib, digest)).digest()
    return base64.b64encode(mac).decode("ascii")


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The X-Twilio-Signature of an auth-token-signed webhook (HMAC-SHA1)."""
    return _sign(auth_token, url, params, "sha1")


def sign_sha256(secret: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The signature of a SharedKey-signed webhook (HMAC-SHA256)."""
    return _sign(secret, url, params, "sha256")


def body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
