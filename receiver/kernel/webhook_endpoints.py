"""WEBHOOK_ENDPOINTS read into endpoints: name, URL, signing secrets (`whsec_…`) and the events each wants."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("recording.archived", "recording.absent", "recording.failed", "recording.deleted")
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_KEYS = {"name", "url", "secret", "secrets", "events"}


@dataclass(frozen=True)
class Endpoint:
    """One configured endpoint. Its secrets never show in a repr, a log line or an error."""

    name: str
    url: str
    events: frozenset[str]
    secrets: tuple[bytes, ...] = field(repr=False)

    def wants(self, event_type: str) -> bool:
        return event_type in self.events


def parse(text: str) -> list[Endpoint]:
    """Every endpoint of the JSON list; ValueError saying which entry and what is wrong (never a secret)."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise ValueError("must be a JSON list of endpoints, e.g. "
                         '[{"name": "crm", "url": "https://…", "secrets": ["whsec_…"]}]') from None
    if not isinstance(raw, list):
        raise ValueError("must be a JSON list of endpoints")
    found = [_endpoint(i, entry) for i, entry in enumerate(raw, 1)]
    names = [e.name for e in found]
    if len(set(names)) != len(names):
        raise ValueError("two endpoints have the same name")
    return found


def _endpoint(number: int, entry: Any) -> Endpoint:
    where = f"endpoint {number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be an object with name, url and secrets")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: events, name, secrets, url)")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be 1-40 of a-z, 0-9, - and _")
    where = f"endpoint {name!r}"
    url = entry.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^/?#\s]+", url):
        raise ValueError(f"{where}: url must be an http(s) URL")
    return Endpoint(name=name, url=url, events=_events(where, entry.get("events")), secrets=_secrets(where, entry))


def _events(where: str, events: Any) -> frozenset[str]:
    if events is None:
        return frozenset(EVENT_TYPES)
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValueError(f"{where}: events must be a list of event types")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"{where}: unknown event {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})")
    return frozenset(events)


def _secrets(where: str, entry: dict[str, Any]) -> tuple[bytes, ...]:
    given = entry.get("secrets", [entry["secret"]] if "secret" in entry else None)
    if not isinstance(given, list) or not given or not all(isinstance(s, str) for s in given):
        raise ValueError(f"{where}: secrets must be a list of one or more whsec_… secrets (several during a rotation)")
    return tuple(_secret(where, number, text) for number, text in enumerate(given, 1))


def _secret(where: str, number: int, text: str) -> bytes:
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"{where}: secret {number} must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: secret {number} is not base64 after {SECRET_PREFIX}") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"{where}: secret {number} must be 24 to 64 bytes (base64 of them after {SECRET_PREFIX})")
    return key
