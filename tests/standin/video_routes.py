"""Video v1 recordings: /v1/Recordings and /v1/Rooms/{RoomSid}/Recordings, fetch/list/delete/Media."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import public_base, require_account, standin_state
from .errors import not_found
from .filters import by_created_window, by_fields
from .paging import envelope_v1, page_request, slice_page
from .records import VideoRecording
from .signed_routes import media_redirect
from .timefmt import iso8601

# The spec caps PageSize at 100 for /v1/Recordings but 1000 for the Rooms list.
MAX_PAGE_SIZE, MAX_ROOM_PAGE_SIZE = 100, 1000


def _size(rec: VideoRecording, media_size: int) -> int:
    if rec.size is not None:
        return rec.size
    return len(rec.media) if rec.media is not None else media_size


def video_json(rec: VideoRecording, base: str, media_size: int, room_scoped: bool = False) -> dict[str, Any]:
    """One recording as the spec's examples show it (the Rooms form adds room_sid, drops callbacks)."""
    path = f"/v1/Rooms/{rec.room_sid}/Recordings/{rec.sid}" if room_scoped else f"/v1/Recordings/{rec.sid}"
    body: dict[str, Any] = {
        "account_sid": rec.account_sid, "status": rec.status,
        "date_created": iso8601(rec.date_created), "sid": rec.sid, "source_sid": rec.source_sid,
        "size": _size(rec, media_size), "type": rec.type, "duration": rec.duration,
        "container_format": rec.container_format, "codec": rec.codec,
        "track_name": rec.track_name, "offset": rec.offset,
    }
    if not room_scoped:
        body["status_callback"] = rec.status_callback
        body["status_callback_method"] = rec.status_callback_method
    body["grouping_sids"] = rec.grouping_sids
    body["media_external_location"] = rec.media_external_location
    if room_scoped:
        body["room_sid"] = rec.room_sid
    body["url"] = f"{base}{path}"
    body["links"] = {"media": f"{base}{path}/Media"}
    return body


def _owned(request: Request) -> VideoRecording:
    """The addressed recording if it belongs to the caller (and to the room, if one is named)."""
    account = require_account(request)
    rec = standin_state(request).get("video", request.path_params["sid"])
    room_sid = request.path_params.get("room_sid")
    if (rec is None or rec.account_sid != account.sid
            or (room_sid is not None and rec.room_sid != room_sid)):
        raise not_found(request.url.path)
    assert isinstance(rec, VideoRecording)
    return rec


async def instance(request: Request) -> Response:
    rec = _owned(request)
    state = standin_state(request)
    if request.method == "DELETE":
        if rec.status == "deleted":
            raise not_found(request.url.path)
        with state.lock:
            # Twilio deletes the media but keeps the metadata, now with status "deleted".
            rec.status = "deleted"
        return Response(status_code=204)
    room_scoped = "room_sid" in request.path_params
    return JSONResponse(video_json(rec, public_base(request), state.media_size, room_scoped))


async def media(request: Request) -> Response:
    rec = _owned(request)
    if rec.status != "completed":
        raise not_found(request.url.path)
    return media_redirect(request, rec.sid)


def _grouped(items: list[VideoRecording], wanted: list[str]) -> list[VideoRecording]:
    return [r for r in items if set(wanted) <= set(r.grouping_sids.values())]


async def list_recordings(request: Request) -> Response:
    return _list(request, room_sid=None)


async def list_room_recordings(request: Request) -> Response:
    return _list(request, room_sid=request.path_params["room_sid"])


def _list(request: Request, room_sid: str | None) -> Response:
    account = require_account(request)
    state = standin_state(request)
    params = request.query_params
    items = [r for r in state.newest_first("video")
             if r.account_sid == account.sid and (room_sid is None or r.room_sid == room_sid)]
    mapping = {"Status": "status", "SourceSid": "source_sid"}
    if room_sid is None:
        mapping["MediaType"] = "type"
        items = _grouped(items, params.getlist("GroupingSid"))
        # "deleted Recordings are not returned by default ... you must explicitly specify
        # Status=deleted" (the Recordings REST API page; the Rooms list page says nothing of it).
        if not params.get("Status"):
            items = [r for r in items if r.status != "deleted"]
    items = by_created_window(by_fields(items, params, mapping), params)
    max_size = MAX_PAGE_SIZE if room_sid is None else MAX_ROOM_PAGE_SIZE
    sl = slice_page(items, lambda r: r.sid, page_request(params, max_size))
    base = public_base(request)
    records = [video_json(r, base, state.media_size, room_sid is not None) for r in sl.items]
    return JSONResponse(envelope_v1(f"{base}{request.url.path}", params, sl, records, "recordings"))


routes = [
    Route("/v1/Recordings", list_recordings, methods=["GET"]),
    Route("/v1/Recordings/{sid}", instance, methods=["GET", "DELETE"]),
    Route("/v1/Recordings/{sid}/Media", media, methods=["GET"]),
    Route("/v1/Rooms/{room_sid}/Recordings", list_room_recordings, methods=["GET"]),
    Route("/v1/Rooms/{room_sid}/Recordings/{sid}", instance, methods=["GET", "DELETE"]),
    Route("/v1/Rooms/{room_sid}/Recordings/{sid}/Media", media, methods=["GET"]),
]
