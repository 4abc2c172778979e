"""Hold and release a recording, or its whole call, conference or room, from its page (POST with CSRF), each recorded with who did it."""

from __future__ import annotations

from redis import Redis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console import audit, context, csrf, recording
from console.render import url
from console.replies import text
from receiver.kernel import holds, keys

MAX_REASON = holds.MAX_REASON


def _target(request: Request) -> tuple[str, str]:
    source, sid = str(request.path_params["source"]), str(request.path_params["sid"])
    if not recording.valid(source, sid) or holds.problem(sid):
        raise HTTPException(404, "no such recording")
    return source, sid


async def hold_perform(request: Request) -> Response:
    """Hold this recording, or the call, conference or room the page shows it belongs to (`on`),
    with the reason the form gave: never deleted at Twilio while held."""
    console = context.of(request)
    source, sid = _target(request)
    who, form = await csrf.checked_form(request)
    reason = " ".join(str(form.get("reason") or "").split())[:MAX_REASON]
    on = str(form.get("on") or sid)
    back = f"/recordings/{source}/{sid}"
    if not reason:
        return RedirectResponse(url(back, notice="hold_needs_reason"), status_code=303)

    def act() -> bool:
        if on != sid and on not in parents(console.redis, source, sid):
            return False
        holds.place(console.redis, on, who.user, reason)
        detail = reason if on == sid else f"{on}: {reason}"
        entry = {"kind": "hold", "by": who.user, "reason": reason, **({} if on == sid else {"hold": on})}
        audit.record(console.redis, audit.Action(audit.now(), who.user, "hold", "", source, sid, detail), entry)
        return True

    if not await console.run(act):
        raise HTTPException(400, "only this recording or the call, conference or room it belongs to can be held here")
    return RedirectResponse(url(back, notice="held"), status_code=303)


def parents(redis: Redis, source: str, sid: str) -> set[str]:
    """The call, conference and room SIDs the catalog keeps on this recording."""
    values = [text(v) for v in redis.hmget(keys.recording_key(source, sid), list(recording.PARENT_FIELDS)) if v]
    return {value for value in values if not holds.problem(value)}


async def release_perform(request: Request) -> Response:
    console = context.of(request)
    source, sid = _target(request)
    who, form = await csrf.checked_form(request)
    back = f"/recordings/{source}/{sid}"
    held_on = str(form.get("sid") or sid)
    if holds.problem(held_on):
        raise HTTPException(400, "not a SID that can be held")

    def act() -> bool:
        released = holds.release(console.redis, held_on)
        if released:
            audit.record(console.redis, audit.Action(audit.now(), who.user, "release", "", source, sid, held_on),
                         {"kind": "release", "by": who.user, "hold": held_on})
        return released

    released = await console.run(act)
    return RedirectResponse(url(back, notice="released" if released else "not_held"), status_code=303)
