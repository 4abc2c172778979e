"""Media v1 recordings: /v1/MediaRecordings fetch/list/delete and the /Media redirect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import public_base, require_account, standin_state
from .errors import ApiError, not_found
from .filters import by_fields
from .paging import envelope_v1, page_request, slice_page
from .records import MediaRecording
from .signed_routes import media_redirect
from .timefmt import iso8601

MAX_PAGE_SIZE = 1000


def media_json(rec: MediaRecording, base: str, media_size: int) -> dict[str, Any]:
    """One MediaRecording with the schema's fields (the spec has no example to copy)."""
    path = f"/v1/MediaRecordings/{rec.sid}"
    size = rec.media_size
    if size is None:
        size = len(rec.media) if rec.media is not None else media_size
    return {
        "account_sid": rec.account_sid, "date_created": iso8601(rec.date_created),
        "date_updated": iso8601(rec.date_updated), "duration": rec.duration, "format": rec.format,
        "links": {"media": f"{base}{path}/Media", "timed_metadata": f"{base}{path}/TimedMetadata"},
        "processor_sid": rec.processor_sid, "resolution": rec.resolution,
        "source_sid": rec.source_sid, "sid": rec.sid, "media_size": size, "status": rec.status,
        "status_callback": rec.status_callback,
        "status_callback_method": rec.status_callback_method, "url": f"{base}{path}",
    }


def _owned(request: Request) -> MediaRecording:
    account = require_account(request)
    rec = standin_state(request).get("media", request.path_params["sid"])
    if rec is None or rec.account_sid != account.sid:
        raise not_found(request.url.path)
    assert isinstance(rec, MediaRecording)
    return rec


async def instance(request: Request) -> Response:
    rec = _owned(request)
    state = standin_state(request)
    if request.method == "DELETE":
        if rec.status == "deleted":
            raise not_found(request.url.path)
        with state.lock:
            rec.status, rec.date_updated = "deleted", datetime.now(UTC)
        return Response(status_code=204)
    return JSONResponse(media_json(rec, public_base(request), state.media_size))


async def media(request: Request) -> Response:
    rec = _owned(request)
    if rec.status != "completed":
        raise not_found(request.url.path)
    return media_redirect(request, rec.sid)


async def list_recordings(request: Request) -> Response:
    account = require_account(request)
    state = standin_state(request)
    params = request.query_params
    order = params.get("Order") or "desc"
    if order not in ("asc", "desc"):
        raise ApiError(400, f"Invalid Order value: {order}", 20001)
    items = [r for r in state.newest_first("media") if r.account_sid == account.sid]
    if order == "asc":
        items.reverse()
    mapping = {"Status": "status", "ProcessorSid": "processor_sid", "SourceSid": "source_sid"}
    items = by_fields(items, params, mapping)
    sl = slice_page(items, lambda r: r.sid, page_request(params, MAX_PAGE_SIZE))
    base = public_base(request)
    records = [media_json(r, base, state.media_size) for r in sl.items]
    return JSONResponse(envelope_v1(f"{base}{request.url.path}", params, sl, records, "media_recordings"))


routes = [
    Route("/v1/MediaRecordings", list_recordings, methods=["GET"]),
    Route("/v1/MediaRecordings/{sid}", instance, methods=["GET", "DELETE"]),
    Route("/v1/MediaRecordings/{sid}/Media", media, methods=["GET"]),
]
