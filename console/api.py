"""The same data and actions as JSON, for scripts: bearer token, session (+ X-CSRF-Token) or Basic for reads."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console import audit, context, csrf, fleet, jobrefs, media, overview, recording
from console.actions import NotFailed
from console.queries import PAGE_SIZE, BadFilter, Cursor, Filters
from console.replies import integer


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def overview_json(request: Request) -> Response:
    console = context.of(request)
    data = await console.run(overview.load, console.redis, console.queue_name, console.failures)
    return _json(data.to_json())


async def recordings_json(request: Request) -> Response:
    console = context.of(request)
    params = dict(request.query_params)
    try:
        filters = Filters.parse(params)
    except BadFilter as exc:
        return _json({"error": str(exc)}, 400)
    page = await console.run(
        console.recordings.page, filters, Cursor.decode(params.get("cursor", "")), integer(params.get("limit"), PAGE_SIZE)
    )
    return _json(page.to_json())


async def recording_json(request: Request) -> Response:
    console = context.of(request)
    source, sid = request.path_params["source"], request.path_params["sid"]
    detail = None
    if recording.valid(source, sid):
        detail = await console.run(recording.load, console.redis, console.queue_name, source, sid)
    if detail is None:
        return _json({"error": "no such recording"}, 404)
    # The media is served beside the page (same sign-in: a session or the bearer token).
    found = media.locate(source, sid, detail.fields)
    return _json({**detail.to_json(), "media_url": f"/recordings/{source}/{sid}/media" if found else None})


async def failures_json(request: Request) -> Response:
    console = context.of(request)
    found = await console.run(console.failures.scan)
    recent = await console.run(audit.recent, console.redis)
    return _json({**found.to_json(), "recent_actions": [a.to_json() for a in recent]})


async def cause_json(request: Request) -> Response:
    console = context.of(request)
    found = await console.run(console.failures.scan)
    group = found.group(request.path_params["cause_id"])
    return _json(group.to_json(with_jobs=True)) if group else _json({"error": "no failed job has this cause"}, 404)


async def workers_json(request: Request) -> Response:
    console = context.of(request)

    def load() -> dict[str, Any]:
        now = time.time()
        names = fleet.queue_names(console.redis, console.queue_name)
        found = fleet.workers(console.redis, now)
        return {"queues": [fleet.queue_state(console.redis, n, now).to_json() for n in names],
                "workers": [w.to_json() for w in found],  # one per RQ worker (thread)
                "processes": [p.to_json() for p in fleet.by_process(found)]}

    return _json(await console.run(load))


async def job_action(request: Request) -> Response:
    console = context.of(request)
    who = csrf.check(request, request.headers.get(csrf.HEADER))
    verb, job_id = request.path_params["verb"], request.path_params["job_id"]
    if verb not in ("replay", "discard") or not jobrefs.SAFE_JOB_ID.fullmatch(job_id):
        return _json({"error": "no such action or job"}, 404)
    act = console.actions.replay if verb == "replay" else console.actions.discard
    try:
        done = await console.run(act, job_id, who.user)
    except NotFailed:
        return _json({"error": "job is not in the failed list", "job_id": job_id}, 409)
    return _json({f"{verb}ed": [done.job_id], "count": 1, "by": who.user})


async def cause_action(request: Request) -> Response:
    console = context.of(request)
    who = csrf.check(request, request.headers.get(csrf.HEADER))
    verb = request.path_params["verb"]
    if verb not in ("replay", "discard"):
        return _json({"error": "no such action"}, 404)
    act = console.actions.replay_cause if verb == "replay" else console.actions.discard_cause
    done = await console.run(act, request.path_params["cause_id"], who.user)
    return _json({f"{verb}ed": [d.job_id for d in done], "count": len(done), "by": who.user})


async def metrics_endpoint(request: Request) -> Response:
    from console.metrics import CONTENT_TYPE_LATEST, scrape

    console = context.of(request)
    body = await console.run(scrape, console.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
