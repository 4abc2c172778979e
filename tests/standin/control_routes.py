"""Unauthenticated /_standin/ control API so other processes (benchmarks, chaos tools) can drive the state."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import public_base, standin_state
from .errors import ApiError
from .legacy_routes import legacy_fields
from .media_routes import media_json
from .records import (
    LegacyRecording,
    MediaRecording,
    Recording,
    VideoRecording,
    VoiceRecording,
)
from .timefmt import parse_datetime
from .video_routes import video_json
from .voice_routes import voice_json

FAULT_FIELDS = {"method", "path_regex", "status", "times", "retry_after", "delay_s", "hang"}


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"Body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "Body must be a JSON object")
    return data


def public_json(record: Recording, base: str, media_size: int) -> dict[str, Any]:
    """What the real API would show for this record (legacy: the XML fields as JSON)."""
    if isinstance(record, VoiceRecording):
        return voice_json(record, base)
    if isinstance(record, VideoRecording):
        return video_json(record, base, media_size)
    if isinstance(record, MediaRecording):
        return media_json(record, base, media_size)
    assert isinstance(record, LegacyRecording)
    return legacy_fields(record)


async def add_fault(request: Request) -> Response:
    data = await _body(request)
    unknown = set(data) - FAULT_FIELDS
    if unknown or "path_regex" not in data or "status" not in data:
        raise ApiError(400, f"Need path_regex and status; unknown fields: {sorted(unknown)}")
    data.setdefault("method", None)
    fault = standin_state(request).add_fault(**data)
    return JSONResponse(fault.to_json(), status_code=201)


async def list_faults(request: Request) -> Response:
    state = standin_state(request)
    with state.lock:
        return JSONResponse([f.to_json() for f in state.faults])


async def clear_faults(request: Request) -> Response:
    standin_state(request).clear_faults()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    data = await _body(request)
    standin_state(request).reset(keep_accounts=bool(data.get("keep_accounts", True)))
    return JSONResponse({"ok": True})


async def add_recording(request: Request) -> Response:
    state = standin_state(request)
    try:
        record = state.add(request.path_params["kind"], **await _body(request))
    except KeyError as exc:
        raise ApiError(404, str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from exc
    return JSONResponse(public_json(record, public_base(request), state.media_size), status_code=201)


async def add_many(request: Request) -> Response:
    """{"count": N, "oldest": ISO time, "step_seconds": s, "account_sid": …}: a backlog in one call."""
    state = standin_state(request)
    data = await _body(request)
    try:
        count = int(data.pop("count"))
        oldest = parse_datetime(str(data.pop("oldest")))
        step = timedelta(seconds=float(data.pop("step_seconds", 1)))
        added = state.add_many(request.path_params["kind"], count, oldest, step, **data)
    except KeyError as exc:
        raise ApiError(400 if "count" in str(exc) or "oldest" in str(exc) else 404, str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from exc
    return JSONResponse({"added": len(added), "sids": [r.sid for r in added]}, status_code=201)


async def add_account(request: Request) -> Response:
    data = await _body(request)
    account = standin_state(request).add_account(data.get("sid"), data.get("auth_token"))
    return JSONResponse({"sid": account.sid, "auth_token": account.auth_token}, status_code=201)


async def add_api_key(request: Request) -> Response:
    data = await _body(request)
    state = standin_state(request)
    account_sid = request.path_params["account_sid"]
    if account_sid not in state.accounts:
        raise ApiError(404, f"No account {account_sid}")
    key = state.add_api_key(account_sid, data.get("sid"), data.get("secret"))
    return JSONResponse({"sid": key.sid, "secret": key.secret, "account_sid": key.account_sid},
                        status_code=201)


async def add_public_key(request: Request) -> Response:
    """{"public_key": PEM, "sid": optional CR…}: voice recordings added with "encrypt_with": its SID are encrypted to it."""
    data = await _body(request)
    try:
        sid = standin_state(request).add_public_key(str(data.get("public_key", "")), data.get("sid"))
    except ValueError as exc:
        raise ApiError(400, f"public_key: {exc}") from exc
    return JSONResponse({"sid": sid}, status_code=201)


async def requests_log(request: Request) -> Response:
    return JSONResponse(standin_state(request).requests())


async def set_latency(request: Request) -> Response:
    seconds = float((await _body(request)).get("seconds", 0.0))
    standin_state(request).latency_s = seconds
    return JSONResponse({"seconds": seconds})


async def set_media_size(request: Request) -> Response:
    size = int((await _body(request)).get("bytes", 0))
    if size < 0:
        raise ApiError(400, "bytes must be >= 0")
    standin_state(request).media_size = size
    return JSONResponse({"bytes": size})


routes = [
    Route("/_standin/faults", add_fault, methods=["POST"]),
    Route("/_standin/faults", list_faults, methods=["GET"]),
    Route("/_standin/faults", clear_faults, methods=["DELETE"]),
    Route("/_standin/reset", reset, methods=["POST"]),
    Route("/_standin/recordings/{kind}", add_recording, methods=["POST"]),
    Route("/_standin/recordings/{kind}/bulk", add_many, methods=["POST"]),
    Route("/_standin/accounts", add_account, methods=["POST"]),
    Route("/_standin/accounts/{account_sid}/keys", add_api_key, methods=["POST"]),
    Route("/_standin/public_keys", add_public_key, methods=["POST"]),
    Route("/_standin/requests", requests_log, methods=["GET"]),
    Route("/_standin/latency", set_latency, methods=["POST"]),
    Route("/_standin/media_size", set_media_size, methods=["POST"]),
]
