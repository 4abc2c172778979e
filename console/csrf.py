"""CSRF: every state-changing request carries the session's token, in the form or a header."""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from console.auth import Identity

FIELD = "csrf_token"
HEADER = "x-csrf-token"


def identity(request: Request) -> Identity:
    found = request.scope.get("state", {}).get("identity")
    if not isinstance(found, Identity):
        raise HTTPException(401, "authentication required")
    return found


def check(request: Request, supplied: str | None) -> Identity:
    """The caller's identity, once its token matches; 403 otherwise."""
    who = identity(request)
    if who.via == "token":
        return who  # A bearer token is never sent by a browser on its own: nothing to forge.
    if not who.csrf or not supplied or not hmac.compare_digest(supplied.encode(), who.csrf.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    return who


async def checked_form(request: Request) -> tuple[Identity, FormData]:
    form = await request.form(max_files=0, max_fields=20)
    token = form.get(FIELD)
    return check(request, token if isinstance(token, str) else request.headers.get(HEADER)), form
