"""Legacy API 2008-08-01 recordings: XML fetch and list (page/numpages attributes) plus .wav/.mp3."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import require_path_account, standin_state
from .errors import not_found
from .filters import by_date_created, by_fields
from .media import CONTENT_TYPES
from .paging import page_request, slice_page
from .records import LegacyRecording
from .timefmt import rfc2822

PREFIX = "/2008-08-01/Accounts/{account_sid}"
MAX_PAGE_SIZE = 1000
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def legacy_fields(rec: LegacyRecording) -> dict[str, str]:
    """The <Recording> children, in the old API's order (also the control API's JSON form)."""
    return {
        "Sid": rec.sid, "AccountSid": rec.account_sid, "CallSid": rec.call_sid,
        "Duration": str(rec.duration), "DateCreated": rfc2822(rec.date_created),
        "DateUpdated": rfc2822(rec.date_updated),
        "Uri": f"/2008-08-01/Accounts/{rec.account_sid}/Recordings/{rec.sid}",
    }


def _recording_element(parent: ET.Element, rec: LegacyRecording) -> None:
    element = ET.SubElement(parent, "Recording")
    for name, value in legacy_fields(rec).items():
        ET.SubElement(element, name).text = value


def _xml(root: ET.Element) -> Response:
    body = XML_DECLARATION + ET.tostring(root, encoding="unicode")
    return Response(body, media_type="application/xml")


async def instance(request: Request) -> Response:
    """GET …/Recordings/{Sid} (XML; `.xml` accepted too) or …/Recordings/{Sid}.wav|.mp3."""
    account = require_path_account(request)
    sid, _, ext = request.path_params["name"].partition(".")
    state = standin_state(request)
    rec = state.get("legacy", sid)
    if rec is None or rec.account_sid != account.sid or ext not in ("", "xml", "wav", "mp3"):
        raise not_found(request.url.path)
    if ext in ("wav", "mp3"):
        return Response(state.media_bytes(rec, ext), media_type=CONTENT_TYPES[ext])
    root = ET.Element("TwilioResponse")
    _recording_element(root, rec)
    return _xml(root)


async def list_recordings(request: Request) -> Response:
    account = require_path_account(request)
    params = request.query_params
    items = [r for r in standin_state(request).newest_first("legacy") if r.account_sid == account.sid]
    items = by_fields(by_date_created(items, params), params, {"CallSid": "call_sid"})
    # The old API pages by number only (0-based); tokens did not exist yet.
    req = page_request(params, MAX_PAGE_SIZE)
    req.token = None
    sl = slice_page(items, lambda r: r.sid, req)
    root = ET.Element("TwilioResponse")
    listing = ET.SubElement(root, "Recordings", {
        "page": str(req.page), "numpages": str(math.ceil(len(items) / req.page_size)),
        "pagesize": str(req.page_size), "total": str(len(items)),
        "start": str(sl.start), "end": str(sl.end),
    })
    for rec in sl.items:
        _recording_element(listing, rec)
    return _xml(root)


routes = [
    Route(f"{PREFIX}/Recordings", list_recordings, methods=["GET"]),
    Route(f"{PREFIX}/Recordings/{{name}}", instance, methods=["GET"]),
]
