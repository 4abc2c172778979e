"""Every action in two steps: GET shows what will happen and asks; POST (with CSRF) does it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console import context, csrf, failures, jobrefs, recording
from console.actions import NotFailed
from console.render import safe_next, url

VERBS = {"replay": "Replay", "discard": "Discard"}
EXPLAIN = {
    "replay": "The job gets its retries back and goes to the end of the queue; a worker runs it as if the "
              "callback had just arrived. Nothing already archived is downloaded twice.",
    "discard": "The failed job is deleted and will not run again. The recording keeps its timeline; a later "
               "callback or reconciler pass will not queue this same status again.",
}
SAMPLE = 20


@dataclass
class Target:
    """What the confirmation page lists: the jobs concerned and why they failed."""

    title: str
    jobs: list[failures.FailedJob]
    total: int
    cause: str
    back: str


def _verb(request: Request) -> str:
    verb = str(request.path_params["verb"])
    if verb not in VERBS:
        raise HTTPException(404, "no such action")
    return verb


def _job_id(request: Request) -> str:
    job_id = str(request.path_params["job_id"])
    if not jobrefs.SAFE_JOB_ID.fullmatch(job_id):
        raise HTTPException(404, "no such job")
    return job_id


def _default_back(job_id: str) -> str:
    ref = jobrefs.parse(job_id)
    return f"/recordings/{ref.source}/{ref.sid}" if ref and recording.valid(ref.source, ref.sid) else "/failures"


async def job_confirm(request: Request) -> Response:
    console = context.of(request)
    verb, job_id = _verb(request), _job_id(request)
    job = await console.run(console.failures.one, job_id)
    back = safe_next(request.query_params.get("next"), _default_back(job_id))
    target = Target(f"{VERBS[verb]} job {job_id}", [job] if job else [], 1 if job else 0, job.line if job else "", back)
    return _render(request, verb, target)


async def cause_confirm(request: Request) -> Response:
    console = context.of(request)
    verb = _verb(request)
    found = await console.run(console.failures.scan)
    group = found.group(request.path_params["cause_id"])
    back = safe_next(request.query_params.get("next"), "/failures")
    if group is None:
        target = Target(f"{VERBS[verb]} all failed jobs of a cause", [], 0, "", back)
    else:
        target = Target(f"{VERBS[verb]} all {group.count} failed jobs with this cause", group.jobs[:SAMPLE],
                        group.count, group.example, back)
    return _render(request, verb, target)


def _render(request: Request, verb: str, target: Target) -> Response:
    return context.of(request).renderer.page(
        request, "confirm.html", status=200 if target.total else 409, verb=verb, label=VERBS[verb],
        explain=EXPLAIN[verb], t=target, action=request.url.path,
    )


async def job_perform(request: Request) -> Response:
    console = context.of(request)
    verb, job_id = _verb(request), _job_id(request)
    who, form = await csrf.checked_form(request)
    back = safe_next(str(form.get("next") or ""), _default_back(job_id))
    act = console.actions.replay if verb == "replay" else console.actions.discard
    try:
        await console.run(act, job_id, who.user)
    except NotFailed:
        return RedirectResponse(_with_notice(back, "not_failed"), status_code=303)
    return RedirectResponse(_with_notice(back, f"{verb}ed", 1), status_code=303)


async def cause_perform(request: Request) -> Response:
    console = context.of(request)
    verb = _verb(request)
    who, form = await csrf.checked_form(request)
    back = safe_next(str(form.get("next") or ""), "/failures")
    act = console.actions.replay_cause if verb == "replay" else console.actions.discard_cause
    done = await console.run(act, request.path_params["cause_id"], who.user)
    return RedirectResponse(_with_notice(back, f"{verb}ed", len(done)), status_code=303)


def _with_notice(path: str, notice: str, n: int | None = None) -> str:
    """The page to go back to, keeping its filters, with the outcome to show."""
    base, _, query = path.partition("?")
    kept = {k: v for k, v in parse_qsl(query) if k not in ("notice", "n")}
    return url(base, **kept, notice=notice, n=n)
