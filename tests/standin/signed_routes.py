"""S3-like presigned media URLs: the /Media 302 redirect and the unauthenticated /_signed download."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import public_base, standin_state
from .errors import ApiError, s3_error
from .media import CONTENT_TYPES
from .media_response import media_response
from .records import MediaRecording, VideoRecording

MAX_TTL_S = 604800  # "The maximum expiration time is 7 days (604800)" for the /Media `Ttl`.
DISPOSITIONS = ("attachment", "inline")  # the documented values of the /Media `ContentDisposition`
# The video document's table: the signed URL's Content-Type follows the recording's codec.
VIDEO_CONTENT_TYPES = {"VP8": "video/webm", "OPUS": "audio/webm", "PCMU": "audio/x-matroska",
                       "H264": "video/x-matroska"}
BOTH_AUTH = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
             "Signature query string parameter or the Authorization header should be specified")
BAD_SIGNATURE = "The request signature we calculated does not match the signature you provided."


def _ttl(request: Request) -> int:
    raw = request.query_params.get("Ttl")
    if not raw:
        return standin_state(request).signed_url_ttl_s
    try:
        ttl = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid Ttl value: {raw}", 20001) from exc
    if not 1 <= ttl <= MAX_TTL_S:
        raise ApiError(400, f"Invalid Ttl value: {raw}", 20001)
    return ttl


def _disposition(request: Request) -> str:
    raw = request.query_params.get("ContentDisposition") or ""
    if raw and raw not in DISPOSITIONS:
        raise ApiError(400, f"Invalid ContentDisposition value: {raw}", 20001)
    return raw


def signed_url(request: Request, sid: str, ttl_s: int, disposition: str = "") -> str:
    state = standin_state(request)
    expires = int(time.time()) + ttl_s
    fields: dict[str, str | int] = {"Expires": expires}
    if disposition:
        fields["Disposition"] = disposition
    fields["Signature"] = state.sign(sid, expires, disposition)
    return f"{public_base(request)}/_signed/{sid}?{urlencode(fields)}"


def media_redirect(request: Request, sid: str) -> Response:
    """Twilio answers /Media with 302 + Location and the same URL in a JSON `redirect_to` body."""
    url = signed_url(request, sid, _ttl(request), _disposition(request))
    return JSONResponse({"redirect_to": url}, status_code=302, headers={"Location": url})


def _expires(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


async def signed_download(request: Request) -> Response:
    """GET /_signed/{sid}?Expires=…&Signature=… — no auth; credentials are refused, like S3."""
    if "authorization" in request.headers:
        return s3_error(400, "InvalidArgument", BOTH_AUTH)
    sid = request.path_params["sid"]
    state = standin_state(request)
    expires = _expires(request.query_params.get("Expires"))
    signature = request.query_params.get("Signature", "")
    disposition = request.query_params.get("Disposition", "")
    if expires is None or not state.verify(sid, expires, signature, disposition):
        return s3_error(403, "SignatureDoesNotMatch", BAD_SIGNATURE)
    if expires < time.time():
        return s3_error(403, "AccessDenied", "Request has expired")
    record = state.get("video", sid) or state.get("media", sid)
    if not isinstance(record, (VideoRecording, MediaRecording)) or record.status != "completed":
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    if isinstance(record, VideoRecording):
        ext = record.container_format
        # Examples spell the codec "opus" where the enum says "OPUS": same codec, same type.
        content_type = VIDEO_CONTENT_TYPES.get(record.codec.upper(), CONTENT_TYPES[ext])
    else:
        ext = record.format
        content_type = CONTENT_TYPES[ext]
    headers = {"Content-Disposition": disposition} if disposition else None
    return media_response(state.media_body(record, ext), content_type, headers)


routes = [Route("/_signed/{sid}", signed_download, methods=["GET"])]
