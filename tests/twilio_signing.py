"""An independent implementation of Twilio's webhook signing, written from Twilio's documentation.

It deliberately shares no code with the project or with twilio-python, so a test that signs with
it proves the receiver agrees with Twilio, not merely with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Iterable


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """HMAC-SHA1 over the full URL followed by each POST parameter name and value, sorted by name."""
    data = url
    for name, value in sorted(params, key=lambda pair: (pair[0], pair[1])):
        data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_sha256(secret: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    data = url
    for name, value in sorted(params, key=lambda pair: (pair[0], pair[1])):
        data += name + value
    digest = hmac.new(secret.encode("utf-8"), data.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
