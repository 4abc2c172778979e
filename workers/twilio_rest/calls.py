"""GETs and DELETEs through a twilio Client's generic `request()`, Twilio's error answers raised as TwilioRestException.

For the APIs twilio-python 9.x has no typed resource for (media v1, the 2008 XML API) and for
answers it cannot model (the /Media redirect). Raising the same exception as the typed client
means workers/failures.py sorts every source's errors the same way.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from defusedxml import ElementTree as SafeET
from twilio.base.exceptions import TwilioRestException
from twilio.http.response import Response
from twilio.rest import Client

from workers.failures import PermanentError

JSON = "application/json"
XML = "application/xml"


def get(client: Client, url: str, params: dict[str, Any] | None = None, accept: str = JSON) -> Response:
    """One GET, never following redirects (a /Media answer is itself the result); raises on >= 400."""
    response = client.request("GET", url, params=params, headers={"Accept": accept}, allow_redirects=False)
    raise_for_status(response, url)
    return response


def delete(client: Client, url: str, accept: str = JSON) -> Response:
    """One DELETE; raises TwilioRestException on >= 400 (a 404 included: the caller knows what it means)."""
    response = client.request("DELETE", url, headers={"Accept": accept}, allow_redirects=False)
    raise_for_status(response, url)
    return response


def json_object(response: Response, url: str) -> dict[str, Any]:
    try:
        body = json.loads(response.text or "")
    except ValueError:
        raise PermanentError(f"{_path(url)} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise PermanentError(f"{_path(url)} answered JSON that is not an object")
    return body


def get_json(client: Client, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return json_object(get(client, url, params), url)


def raise_for_status(response: Response, url: str) -> None:
    if response.status_code >= 400:
        raise_error(response, url)


def raise_error(response: Response, url: str) -> NoReturn:
    code, message = error_fields(response.text or "")
    raise TwilioRestException(response.status_code, _path(url), msg=message or f"HTTP {response.status_code}", code=code)


def error_fields(text: str) -> tuple[int | None, str | None]:
    """Twilio's error code and message from a JSON body or a 2008-style XML <RestException>."""
    try:
        body = json.loads(text)
    except ValueError:
        return _xml_error(text)
    if not isinstance(body, dict):
        return None, None
    code = body.get("code")
    message = body.get("message")
    return (code if isinstance(code, int) else None), (str(message)[:300] if message else None)


def _xml_error(text: str) -> tuple[int | None, str | None]:
    try:
        root = SafeET.fromstring(text)
    except Exception:
        return None, None
    code = root.findtext(".//RestException/Code")
    message = root.findtext(".//RestException/Message")
    return (int(code) if code and code.isdigit() else None), (message[:300] if message else None)


def _path(url: str) -> str:
    """The URL without its query: query strings may carry signatures, never worth logging."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
