"""Legacy API 2008-08-01 recordings: the XML list, and the instance as WAV, MP3 or XML, and its DELETE."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import require_path_account, standin_state
from .errors import not_found
from .filters import by_date_created
from .media import CONTENT_TYPES
from .media_response import media_response
from .paging import page_request, slice_page
from .records import LegacyRecording
from .timefmt import rfc2822

PREFIX = "/2008-08-01/Accounts/{account_sid}"
MAX_PAGE_SIZE = 1000
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# The document: no extension or `.wav` is WAV audio, `.mp3` MP3, and only `.xml` the XML form.
AUDIO_EXTENSIONS = {"": "wav", "wav": "wav", "mp3": "mp3"}


def legacy_fields(rec: LegacyRecording) -> dict[str, str]:
    """The <Recording> children the document lists, in its order (also the control API's JSON form)."""
    return {
        "Sid": rec.sid, "AccountSid": rec.account_sid, "CallSid": rec.call_sid,
        "Duration": str(rec.duration), "DateCreated": rfc2822(rec.date_created),
        "DateUpdated": rfc2822(rec.date_updated),
    }


def _recording_element(parent: ET.Element, rec: LegacyRecording) -> None:
    element = ET.SubElement(parent, "Recording")
    for name, value in legacy_fields(rec).items():
        ET.SubElement(element, name).text = value


def _xml(root: ET.Element) -> Response:
    body = XML_DECLARATION + ET.tostring(root, encoding="unicode")
    return Response(body, media_type="application/xml")


def _split_name(name: str) -> tuple[str, str]:
    sid, dot, ext = name.partition(".")
    return sid, (ext if dot else "")


def _in_path_account(request: Request, sid: str) -> LegacyRecording:
    rec = standin_state(request).get("legacy", sid)
    if not isinstance(rec, LegacyRecording) or rec.account_sid != request.path_params["account_sid"]:
        raise not_found(request.url.path)
    return rec


async def instance(request: Request) -> Response:
    """GET …/Recordings/{Sid}[.wav|.mp3|.xml]: no credentials needed, unlike the list."""
    sid, ext = _split_name(request.path_params["name"])
    if ext not in AUDIO_EXTENSIONS and ext != "xml":
        raise not_found(request.url.path)
    # This is the RecordingUrl Twilio hands a <Record> action, and the document says instances,
    # unlike the list, are not protected: a wrong or missing Authorization header changes nothing.
    rec = _in_path_account(request, sid)
    if ext == "xml":
        root = ET.Element("TwilioResponse")
        _recording_element(root, rec)
        return _xml(root)
    audio = AUDIO_EXTENSIONS[ext]
    return media_response(standin_state(request).media_body(rec, audio), CONTENT_TYPES[audio])


async def delete_instance(request: Request) -> Response:
    """DELETE …/Recordings/{Sid}: 204 with no body, and the recording is gone from the account."""
    # The document is silent on credentials for DELETE; it removes a recording "from your
    # account", so the stand-in asks for that account's credentials as for the list.
    require_path_account(request)
    sid, ext = _split_name(request.path_params["name"])
    if ext not in AUDIO_EXTENSIONS and ext != "xml":
        raise not_found(request.url.path)
    rec = _in_path_account(request, sid)
    standin_state(request).remove("legacy", rec.sid)
    return Response(status_code=204)


async def list_recordings(request: Request) -> Response:
    account = require_path_account(request)
    params = request.query_params
    items = [r for r in standin_state(request).newest_first("legacy") if r.account_sid == account.sid]
    # The document names only the DateCreated filters for this list.
    items = by_date_created(items, params)
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
    Route(f"{PREFIX}/Recordings/{{name}}", delete_instance, methods=["DELETE"]),
]
