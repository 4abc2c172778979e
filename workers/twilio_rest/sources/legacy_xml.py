"""Reads the 2008-08-01 API's XML (`<TwilioResponse><Recording>`, `<Recordings page numpages …>`) with defusedxml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from workers.failures import PermanentError
from workers.twilio_rest.timestamps import parse

# <Recording> child -> our metadata name; dates are RFC 2822 and become ISO 8601.
_FIELDS = {
    "Sid": "sid", "AccountSid": "account_sid", "CallSid": "call_sid", "Duration": "duration",
    "DateCreated": "date_created", "DateUpdated": "date_updated",
}


@dataclass(frozen=True)
class RecordingsPage:
    recordings: list[dict[str, Any]]
    page: int
    numpages: int


def _root(text: str) -> Element:
    try:
        root: Element = SafeET.fromstring(text)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise PermanentError(f"2008-08-01 answer is not acceptable XML: {type(exc).__name__}") from None
    if root.tag != "TwilioResponse":
        raise PermanentError(f"2008-08-01 answer is <{root.tag[:40]}>, not <TwilioResponse>")
    return root


def _recording(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, name in _FIELDS.items():
        text = (element.findtext(tag) or "").strip()
        out[name] = text or None
    duration = out["duration"]
    out["duration"] = int(duration) if duration and duration.lstrip("-").isdigit() else None
    for name in ("date_created", "date_updated"):
        moment = parse(out[name])
        out[name] = moment.isoformat() if moment else out[name]
    return out


def recording(text: str) -> dict[str, Any]:
    element = _root(text).find("Recording")
    if element is None:
        raise PermanentError("2008-08-01 answer has no <Recording>")
    return _recording(element)


def _attribute(element: Element, name: str) -> int:
    raw = element.get(name) or element.get(name[0].upper() + name[1:]) or ""
    if not raw.isdigit():
        raise PermanentError(f"<Recordings> has no usable {name} attribute")
    return int(raw)


def recordings_page(text: str) -> RecordingsPage:
    listing = _root(text).find("Recordings")
    if listing is None:
        raise PermanentError("2008-08-01 answer has no <Recordings>")
    return RecordingsPage(
        recordings=[_recording(element) for element in listing.findall("Recording")],
        page=_attribute(listing, "page"),
        numpages=_attribute(listing, "numpages"),
    )
