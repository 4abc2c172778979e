"""Voice recordings, API 2010-04-01: fetch, delete, lists (account/call/conference) and .wav/.mp3 media."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import public_base, require_account, require_path_account, standin_state
from .errors import not_found
from .filters import by_date_created, by_fields, truthy
from .media import CONTENT_TYPES
from .media_response import media_response
from .paging import envelope_2010, page_request, slice_page
from .records import VoiceRecording
from .state import StandinState
from .timefmt import rfc2822

Scope = Literal["account", "call", "conference"]
PREFIX = "/2010-04-01/Accounts/{account_sid}"
MAX_PAGE_SIZE = 1000


def _instance_uri(rec: VoiceRecording, scope: Scope) -> str:
    root = f"/2010-04-01/Accounts/{rec.account_sid}"
    if scope == "call":
        return f"{root}/Calls/{rec.call_sid}/Recordings/{rec.sid}.json"
    if scope == "conference":
        return f"{root}/Conferences/{rec.conference_sid}/Recordings/{rec.sid}.json"
    return f"{root}/Recordings/{rec.sid}.json"


def voice_json(rec: VoiceRecording, base: str, scope: Scope = "account") -> dict[str, Any]:
    """One recording as the spec's examples show it; the three scopes differ slightly."""
    body: dict[str, Any] = {
        "account_sid": rec.account_sid, "api_version": "2010-04-01", "call_sid": rec.call_sid,
        "conference_sid": rec.conference_sid, "channels": rec.channels,
        "date_created": rfc2822(rec.date_created), "date_updated": rfc2822(rec.date_updated),
        "start_time": rfc2822(rec.start_time), "price": rec.price, "price_unit": rec.price_unit,
        # duration is a STRING in 2010-04-01 (schema and examples agree).
        "duration": str(rec.duration), "sid": rec.sid, "source": rec.source, "status": rec.status,
        "error_code": rec.error_code, "encryption_details": rec.encryption_details, "uri": _instance_uri(rec, scope),
    }
    if scope == "call":
        body["track"] = rec.track
    if scope == "account":
        root = f"/2010-04-01/Accounts/{rec.account_sid}/Recordings/{rec.sid}"
        body["subresource_uris"] = {"add_on_results": f"{root}/AddOnResults.json",
                                    "transcriptions": f"{root}/Transcriptions.json"}
        body["media_url"] = f"{base}{root}"
    return body


def _split_name(name: str) -> tuple[str, str]:
    sid, dot, ext = name.partition(".")
    return sid, (ext if dot else "")


def _visible(rec: VoiceRecording | None, account_sid: str, include_deleted: bool) -> bool:
    if rec is None or rec.account_sid != account_sid:
        return False
    return include_deleted or rec.status != "deleted"


async def recording_instance(request: Request) -> Response:
    """GET/DELETE …/Recordings/{Sid}.json, GET …/Recordings/{Sid}[.wav|.mp3]."""
    sid, ext = _split_name(request.path_params["name"])
    if ext in ("", "wav", "mp3") and request.method in ("GET", "HEAD"):
        return _media(request, sid, ext or "wav")
    if ext != "json":
        raise not_found(request.url.path)
    account = require_path_account(request)
    state = standin_state(request)
    rec = state.get("voice", sid)
    include_deleted = truthy(request.query_params.get("IncludeSoftDeleted"))
    if request.method == "DELETE":
        if not _visible(rec, account.sid, False):
            raise not_found(request.url.path)
        return _soft_delete(state, rec)
    if not _visible(rec, account.sid, include_deleted):
        raise not_found(request.url.path)
    return JSONResponse(voice_json(rec, public_base(request)))


def _soft_delete(state: StandinState, rec: VoiceRecording) -> Response:
    # The metadata stays (IncludeSoftDeleted shows it); the media is gone.
    with state.lock:
        rec.status, rec.date_updated = "deleted", datetime.now(UTC)
    return Response(status_code=204)


def _media(request: Request, sid: str, ext: str) -> Response:
    state = standin_state(request)
    account_sid = require_path_account(request).sid if state.voice_media_requires_auth else request.path_params["account_sid"]
    rec = state.get("voice", sid)
    if not _visible(rec, account_sid, False) or rec.status != "completed":
        raise not_found(request.url.path)
    return media_response(state.media_body(rec, ext), CONTENT_TYPES[ext])


def _list(request: Request, scope: Scope, scope_filter: dict[str, str]) -> Response:
    account = require_path_account(request)
    params = request.query_params
    include_deleted = scope == "account" and truthy(params.get("IncludeSoftDeleted"))
    items = [r for r in standin_state(request).newest_first("voice")
             if _visible(r, account.sid, include_deleted)
             and all(getattr(r, attr) == value for attr, value in scope_filter.items())]
    items = by_date_created(items, params)
    if scope == "account":
        # Only the account-wide list documents CallSid and ConferenceSid filters.
        items = by_fields(items, params, {"CallSid": "call_sid", "ConferenceSid": "conference_sid"})
    sl = slice_page(items, lambda r: r.sid, page_request(params, MAX_PAGE_SIZE))
    base = public_base(request)
    records = [voice_json(r, base, scope) for r in sl.items]
    return JSONResponse(envelope_2010(request.url.path, params, sl, records))


async def list_recordings(request: Request) -> Response:
    return _list(request, "account", {})


async def list_call_recordings(request: Request) -> Response:
    return _list(request, "call", {"call_sid": request.path_params["call_sid"]})


async def list_conference_recordings(request: Request) -> Response:
    return _list(request, "conference", {"conference_sid": request.path_params["conference_sid"]})


async def scoped_instance(request: Request) -> Response:
    """GET/DELETE …/Calls/{CallSid}/Recordings/{Sid}.json and the Conferences variant."""
    sid, ext = _split_name(request.path_params["name"])
    account = require_account(request)
    state = standin_state(request)
    rec = state.get("voice", sid)
    call_sid = request.path_params.get("call_sid")
    conference_sid = request.path_params.get("conference_sid")
    ok = (ext == "json" and request.path_params["account_sid"] == account.sid
          and _visible(rec, account.sid, False)
          and (call_sid is None or rec.call_sid == call_sid)
          and (conference_sid is None or rec.conference_sid == conference_sid))
    if not ok:
        raise not_found(request.url.path)
    if request.method == "DELETE":
        return _soft_delete(state, rec)
    scope: Scope = "call" if call_sid else "conference"
    return JSONResponse(voice_json(rec, public_base(request), scope))


def transcription_json(rec: VoiceRecording, index: int) -> dict[str, Any]:
    item = rec.transcriptions[index]
    return {
        "account_sid": rec.account_sid, "api_version": "2010-04-01", "date_created": rfc2822(item.date_created),
        "date_updated": rfc2822(item.date_created), "duration": str(rec.duration), "price": None, "price_unit": "USD",
        "recording_sid": rec.sid, "sid": item.sid, "status": item.status, "transcription_text": item.transcription_text,
        "type": "fast", "uri": f"/2010-04-01/Accounts/{rec.account_sid}/Transcriptions/{item.sid}.json",
    }


async def list_transcriptions(request: Request) -> Response:
    """GET …/Recordings/{RecordingSid}/Transcriptions.json: the recording's transcriptions."""
    account = require_path_account(request)
    rec = standin_state(request).get("voice", request.path_params["recording_sid"])
    if not _visible(rec, account.sid, True):
        raise not_found(request.url.path)
    params = request.query_params
    indexes = list(range(len(rec.transcriptions)))
    sl = slice_page(indexes, lambda i: rec.transcriptions[i].sid, page_request(params, MAX_PAGE_SIZE))
    records = [transcription_json(rec, i) for i in sl.items]
    return JSONResponse(envelope_2010(request.url.path, params, sl, records, "transcriptions"))


routes = [
    Route(f"{PREFIX}/Recordings/{{recording_sid}}/Transcriptions.json", list_transcriptions, methods=["GET"]),
    Route(f"{PREFIX}/Recordings.json", list_recordings, methods=["GET"]),
    Route(f"{PREFIX}/Recordings/{{name}}", recording_instance, methods=["GET", "DELETE"]),
    Route(f"{PREFIX}/Calls/{{call_sid}}/Recordings.json", list_call_recordings, methods=["GET"]),
    Route(f"{PREFIX}/Calls/{{call_sid}}/Recordings/{{name}}", scoped_instance, methods=["GET", "DELETE"]),
    Route(f"{PREFIX}/Conferences/{{conference_sid}}/Recordings.json", list_conference_recordings,
          methods=["GET"]),
    Route(f"{PREFIX}/Conferences/{{conference_sid}}/Recordings/{{name}}", scoped_instance,
          methods=["GET", "DELETE"]),
]
