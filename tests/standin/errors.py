"""Twilio-style error bodies: JSON for 2010-04-01 and v1, XML for 2008-08-01, S3-style for signed URLs."""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

LEGACY_PREFIX = "/2008-08-01/"
SIGNED_PREFIX = "/_signed/"

MESSAGES = {
    400: "Bad Request", 401: "Authenticate", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}
# Twilio's code for bad credentials is 20003; the others follow the 20000 + status pattern.
SPECIAL_CODES = {401: 20003}


class ApiError(Exception):
    """Raised by handlers; rendered in the dialect of the path that was called."""

    def __init__(self, status: int, message: str | None = None, code: int | None = None) -> None:
        super().__init__(message or MESSAGES.get(status, "Error"))
        self.status = status
        self.message = message or MESSAGES.get(status, "Error")
        self.code = code


def twilio_code(status: int) -> int:
    return SPECIAL_CODES.get(status, 20000 + status)


def not_found(path: str) -> ApiError:
    return ApiError(404, f"The requested resource {path} was not found")


def json_error(status: int, message: str, code: int | None = None) -> JSONResponse:
    code = code or twilio_code(status)
    body = {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return JSONResponse(body, status_code=status)


def xml_error(status: int, message: str) -> Response:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<TwilioResponse><RestException>'
            f"<Status>{status}</Status><Message>{escape(message)}</Message>"
            "</RestException></TwilioResponse>")
    return Response(body, status_code=status, media_type="application/xml")


def s3_error(status: int, code: str, message: str) -> Response:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>")
    return Response(body, status_code=status, media_type="application/xml")


def error_response(path: str, status: int, message: str | None = None, code: int | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The error body a client of `path` expects, with any extra headers (Retry-After)."""
    text = message or MESSAGES.get(status, "Error")
    if path.startswith(LEGACY_PREFIX):
        response = xml_error(status, text)
    elif path.startswith(SIGNED_PREFIX):
        response = s3_error(status, MESSAGES.get(status, "Error").replace(" ", ""), text)
    else:
        response = json_error(status, text, code)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request.url.path, exc.status, exc.message, exc.code)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 would otherwise be plain text.
    assert isinstance(exc, HTTPException)
    path = request.url.path
    message = f"The requested resource {path} was not found" if exc.status_code == 404 else None
    return error_response(path, exc.status_code, message)
