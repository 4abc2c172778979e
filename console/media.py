"""Where a recording's media is in the archive, found from its validated source, sid and account only."""

from __future__ import annotations

from dataclasses import dataclass

from receiver.kernel.sids import is_sid
from workers.storage.seam import Keys, name_of

# By extension only: what the archive holds are Twilio's own formats. Chromium plays wav, mp3, mp4
# (H.264/AAC) and webm; Matroska (.mka/.mkv, video rooms' tracks) only when its codecs are ones it
# knows, so the page offers the download beside the player.
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "mka": "audio/x-matroska",
    "mkv": "video/x-matroska",
    "mp4": "video/mp4",
    "webm": "video/webm",
}
VIDEO = frozenset({"mkv", "mp4", "webm"})


@dataclass(frozen=True)
class MediaFile:
    key: str
    name: str
    ext: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.ext]

    @property
    def element(self) -> str:
        """The HTML element that plays it."""
        return "video" if self.ext in VIDEO else "audio"

    def disposition(self, download: bool) -> str:
        # The name is `<sid>.<ext>`, letters and digits only: no quoting needed.
        return f'{"attachment" if download else "inline"}; filename="{self.name}"'


def locate(source: str, sid: str, fields: dict[str, str]) -> MediaFile | None:
    """The media of an archived recording, or None. The key is rebuilt from the store's layout:
    only the extension is taken from the catalog's media_path, and only when the file name there
    is exactly `<sid>.<known extension>`; the account must be an account sid."""
    account = fields.get("account_sid", "")
    path = fields.get("media_path", "")
    if not path or not is_sid(account, "AC"):
        return None
    stem, _, ext = name_of(path).rpartition(".")
    if stem != sid or ext not in CONTENT_TYPES:
        return None
    keys = Keys.of(source, account, sid, ext)
    return MediaFile(key=keys.media, name=name_of(keys.media), ext=ext)


def record_key(source: str, sid: str, fields: dict[str, str]) -> str | None:
    """The key of the recording's commit record (Twilio's metadata and the callback), or None."""
    account = fields.get("account_sid", "")
    if not fields.get("metadata_path") or not is_sid(account, "AC"):
        return None
    return Keys.of(source, account, sid, "none").record
