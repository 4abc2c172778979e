"""Sends media whole, or streamed with its length declared when the stand-in makes it while sending."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.responses import Response, StreamingResponse


def media_response(body: bytes | tuple[Iterator[bytes], int], media_type: str, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, bytes):
        return Response(body, media_type=media_type, headers=headers)
    blocks, length = body
    # Content-Length, as Twilio sends it: a client can tell a cut-short body from a whole one.
    return StreamingResponse(blocks, media_type=media_type, headers={**(headers or {}), "Content-Length": str(length)})
