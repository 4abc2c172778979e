"""A recording's media for a signed-in operator: the local file with Range, or a redirect to a short S3 link."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from console import byte_range, context, media, recording
from console.archive import Archive
from console.media import MediaFile
from console.replies import mapping
from receiver.kernel import logs
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.keys import recording_key

log = logs.get("console.media")


async def recording_media(request: Request) -> Response:
    """`?download=1` asks for it as an attachment. Reached only through the Guard: signed in."""
    console = context.of(request)
    source, sid = request.path_params["source"], request.path_params["sid"]
    if not recording.valid(source, sid):
        raise HTTPException(404, "no such recording")
    fields = mapping(await console.run(console.redis.hgetall, recording_key(source, sid)))
    found = media.locate(source, sid, fields)
    if found is None:
        raise HTTPException(404, f"no archived media for {source} recording {sid}")
    download = request.query_params.get("download") == "1"
    archive = console.archive
    if archive.is_local:
        return await console.run(_local, request, archive, found, download)
    try:
        link = await console.run(archive.link, found, download)
    except RecordingReceiverError as exc:
        log.warning("media link not signed", source=source, sid=sid, error=str(exc))
        raise HTTPException(503, f"the media link could not be made: {exc}") from None
    # The link is not logged: its query string is a signature anyone could use until it lapses.
    log.info("media link issued", source=source, sid=sid, seconds=archive.link_seconds, download=download,
             user=getattr(request.scope.get("state", {}).get("identity"), "user", ""))
    return RedirectResponse(link, status_code=307)


def _local(request: Request, archive: Archive, found: MediaFile, download: bool) -> Response:
    path = archive.local_path(found)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise HTTPException(404, f"{found.name} is not in the archive directory") from None
    response = FileResponse(path, media_type=found.content_type, stat_result=stat, filename=found.name,
                            content_disposition_type="attachment" if download else "inline")
    wanted = request.headers.get("range")
    if wanted is not None and byte_range.applies(
        request.headers.get("if-range"), response.headers["etag"], response.headers["last-modified"]
    ):
        try:
            byte_range.parse(wanted, stat.st_size)
        except byte_range.Unsatisfiable as exc:
            return PlainTextResponse(f"{exc}\n", status_code=416, headers={"content-range": f"bytes */{stat.st_size}"})
    return response
