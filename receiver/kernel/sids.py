"""Twilio SID patterns: a two-letter prefix and 32 hex digits."""

from __future__ import annotations

import re

_HEX32 = "[0-9a-fA-F]{32}"

PREFIXES = {
    "account": "AC",
    "recording": "RE",
    "call": "CA",
    "conference": "CF",
    "room": "RM",
    "room_recording": "RT",
    "track": "MT",
    "participant": "PA",
    "media_recording": "KV",
    "media_processor": "ZX",
}

_PATTERNS = {prefix: re.compile(f"^{prefix}{_HEX32}$") for prefix in PREFIXES.values()}
_ANY = re.compile(f"^[A-Z]{{2}}{_HEX32}$")


def is_sid(value: str, prefix: str) -> bool:
    """True when `value` is a SID with exactly this prefix."""
    pattern = _PATTERNS.get(prefix) or re.compile(f"^{re.escape(prefix)}{_HEX32}$")
    return bool(pattern.fullmatch(value))


def is_any_sid(value: str) -> bool:
    return bool(_ANY.fullmatch(value))
