"""Sorts a Twilio REST call by source, endpoint kind and status class, for the latency histogram."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# The API version in a path says the source, whatever host (a mock, a proxy) serves it.
_SOURCES = (("/2010-04-01/", "voice"), ("/2008-08-01/", "legacy"), ("/v1/MediaRecordings", "media"),
            ("/v1/Recordings", "video"), ("/v1/Rooms", "video"))
_LISTS = ("Recordings", "Recordings.json", "Recordings.xml", "MediaRecordings")
_MEDIA_EXTS = (".wav", ".mp3", ".mka", ".mkv", ".mp4", ".webm")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "error")
ENDPOINT_KINDS = ("metadata", "media", "list", "delete")


@dataclass(frozen=True)
class RestCall:
    method: str
    url: str
    status: int | None  # None: no answer (connection refused, timeout)
    seconds: float

    @property
    def labels(self) -> str:
        return f"{source(self.url)}|{endpoint_kind(self.method, self.url)}|{status_class(self.status)}"


def source(url: str) -> str:
    path = urlsplit(url).path
    for marker, name in _SOURCES:
        if marker in path:
            return name
    return "other"


def endpoint_kind(method: str, url: str) -> str:
    if method.upper() == "DELETE":
        return "delete"
    last = urlsplit(url).path.rstrip("/").rpartition("/")[2]
    if last == "Media" or last.lower().endswith(_MEDIA_EXTS):
        return "media"
    if last in _LISTS:
        return "list"
    return "metadata"


def status_class(status: int | None) -> str:
    if status is None:
        return "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx" if 200 <= status < 600 else "error"
