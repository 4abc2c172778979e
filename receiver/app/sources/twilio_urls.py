"""Pulls SIDs out of URLs a callback carries, after checking the URL is Twilio's and shaped as expected.

Such URLs are never fetched (a signed callback still names whatever the caller's TwiML put in it);
they only tell us which recording the callback is about.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from receiver.kernel.errors import BadCallback

_HEX32 = "[0-9a-fA-F]{32}"
# api.twilio.com, video.twilio.com, media.twilio.com and their edge/region forms.
_TWILIO_HOST = re.compile(r"^(api|video|media)(\.[a-z0-9-]+)*\.twilio\.com$")

LEGACY_RECORDING = re.compile(
    rf"^/(?:2008-08-01|2010-04-01)/Accounts/(?P<account>AC{_HEX32})/Recordings/(?P<sid>RE{_HEX32})"
    r"(?:\.(?:wav|mp3|xml|json))?/?$"
)
VIDEO_RECORDING = re.compile(rf"^/v1/(?:Rooms/RM{_HEX32}/)?Recordings/(?P<sid>RT{_HEX32})(?:/Media)?/?$")


def twilio_path(name: str, url: str, *, relative_ok: bool) -> str:
    """The path of `url`, which must be relative (when allowed) or on a Twilio host."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not _TWILIO_HOST.fullmatch(host) or parts.username:
            raise BadCallback(f"{name} is not a Twilio URL")
    elif not relative_ok:
        raise BadCallback(f"{name} is not an absolute URL")
    return parts.path


def match(name: str, url: str, pattern: re.Pattern[str], *, relative_ok: bool) -> re.Match[str]:
    found = pattern.fullmatch(twilio_path(name, url, relative_ok=relative_ok))
    if found is None:
        raise BadCallback(f"{name} does not name a recording")
    return found
