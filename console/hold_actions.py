"""Hold and release a recording from its page (POST with CSRF), each recorded with who did it."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console import audit, context, csrf, recording
from console.render import url
from receiver.kernel import holds

MAX_REASON = holds.MAX_REASON


def _target(request: Request) -> tuple[str, str]:
    source, sid = str(request.path_params["source"]), str(request.path_params["sid"])
    if not recording.valid(source, sid) or holds.problem(sid):
        raise HTTPException(404, "no such recording")
    return source, sid


async def hold_perform(request: Request) -> Response:
    """Hold this recording (never deleted at Twilio while held), with the reason the form gave."""
    console = context.of(request)
    source, sid = _target(request)
    who, form = await csrf.checked_form(request)
    reason = " ".join(str(form.get("reason") or "").split())[:MAX_REASON]
    back = f"/recordings/{source}/{sid}"
    if not reason:
        return RedirectResponse(url(back, notice="hold_needs_reason"), status_code=303)

    def act() -> None:
        holds.place(console.redis, sid, who.user, reason)
        audit.record(console.redis, audit.Action(audit.now(), who.user, "hold", "", source, sid, reason),
                     {"kind": "hold", "by": who.user, "reason": reason})

    await console.run(act)
    return RedirectResponse(url(back, notice="held"), status_code=303)


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
