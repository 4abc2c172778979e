"""The HTML pages operators read: overview, recordings, one recording, failures, workers."""

from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import audit, context, fleet, guard, overview, recording
from console.queries import PAGE_SIZE, SOURCES, STATUSES, BadFilter, Cursor, Filters
from console.render import url
from console.replies import integer


async def overview_page(request: Request) -> Response:
    console = context.of(request)
    data = await console.run(overview.load, console.redis, console.queue_name, console.failures)
    refresh = request.query_params.get("refresh") == "1"
    return console.renderer.page(request, "overview.html", o=data, refresh=refresh)


async def recordings_page(request: Request) -> Response:
    console = context.of(request)
    params = dict(request.query_params)
    limit = max(1, min(integer(params.get("limit"), PAGE_SIZE), 200))
    try:
        filters = Filters.parse(params)
    except BadFilter as exc:
        return console.renderer.page(request, "recordings.html", status=400, error=str(exc), page=None,
                                     filters=Filters(), sources=SOURCES, statuses=STATUSES, older="", first="")
    cursor = Cursor.decode(params.get("cursor", ""))
    page = await console.run(console.recordings.page, filters, cursor, limit)
    kept = filters.query()
    older = ""
    if page.next_cursor:
        older = url("/recordings", **kept, cursor=page.next_cursor, limit=limit if limit != PAGE_SIZE else "")
    first = url("/recordings", **kept) if cursor else ""
    return console.renderer.page(request, "recordings.html", error="", page=page, filters=filters,
                                 sources=SOURCES, statuses=STATUSES, older=older, first=first)


async def recording_page(request: Request) -> Response:
    console = context.of(request)
    source, sid = request.path_params["source"], request.path_params["sid"]
    if not recording.valid(source, sid):
        raise HTTPException(404, "no such recording")
    detail = await console.run(recording.load, console.redis, console.queue_name, source, sid)
    if detail is None:
        raise HTTPException(404, f"nothing is known about {source} recording {sid}")
    stored = await console.run(console.archive.view, source, sid, detail.fields)
    page = console.renderer.page(request, "recording.html", r=detail, a=stored)
    page.headers["content-security-policy"] = guard.with_media(stored.media_origin)
    return page


async def failures_page(request: Request) -> Response:
    console = context.of(request)
    found = await console.run(console.failures.scan)
    recent = await console.run(audit.recent, console.redis)
    return console.renderer.page(request, "failures.html", f=found, recent=recent)


async def cause_page(request: Request) -> Response:
    console = context.of(request)
    found = await console.run(console.failures.scan)
    group = found.group(request.path_params["cause_id"])
    if group is None:
        raise HTTPException(404, "no failed job has this cause now (replayed or discarded already?)")
    return console.renderer.page(request, "cause.html", g=group)


async def workers_page(request: Request) -> Response:
    console = context.of(request)

    def load() -> tuple[list[fleet.QueueState], list[fleet.WorkerState]]:
        now = time.time()
        names = fleet.queue_names(console.redis, console.queue_name)
        return [fleet.queue_state(console.redis, name, now) for name in names], fleet.workers(console.redis)

    queues, workers = await console.run(load)
    processes = fleet.by_process(workers)
    return console.renderer.page(request, "workers.html", queues=queues, workers=workers, processes=len(processes),
                                 hosts=fleet.hosts(processes))
