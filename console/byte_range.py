"""The one Range a media player asks for, checked before Starlette's FileResponse serves it."""

from __future__ import annotations

import re

from receiver.kernel.errors import RecordingReceiverError

# One range only: players ask for one at a time. A list of ranges (multipart/byteranges) is
# refused rather than served: nothing on the page needs it and each range costs a seek.
_ONE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class Unsatisfiable(RecordingReceiverError, ValueError):
    """Answered with 416 and `Content-Range: bytes */<size>`."""


def parse(header: str, size: int) -> tuple[int, int]:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` → (first, last) byte, inclusive, within `size`.
    Anything else (several ranges, another unit, garbage, a range past the end) is Unsatisfiable."""
    match = _ONE.fullmatch(header.strip().replace(" ", ""))
    if size <= 0:
        raise Unsatisfiable("an empty file has no byte to serve")
    if match is None:
        raise Unsatisfiable("one byte range, bytes=first-last, is served")
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text or int(last_text) == 0:
            raise Unsatisfiable("a suffix range needs a length")
        return max(size - int(last_text), 0), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or (last_text and int(last_text) < first):
        raise Unsatisfiable("the range is outside the file")
    return first, last


def applies(if_range: str | None, etag: str, last_modified: str) -> bool:
    """Whether a Range is to be honoured: without If-Range always; with one only when it names the
    file as it is now (a strong match: a weak validator never does), else the whole file is sent."""
    if if_range is None:
        return True
    if if_range.startswith("W/"):
        return False
    return if_range in (etag, last_modified)
