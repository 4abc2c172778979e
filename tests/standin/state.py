"""The stand-in's in-memory, thread-safe world: accounts, recordings, faults, request log, knobs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from . import encryption
from .faults import FOREVER, Fault, take_fault
from .media import STREAM_ABOVE, media_for, media_stream
from .records import (
    KINDS,
    Account,
    ApiKey,
    LegacyRecording,
    MediaRecording,
    Recording,
    RecordingKind,
    Transcription,
    VideoRecording,
    VoiceRecording,
    make_sid,
)
from .timefmt import parse_datetime

__all__ = [
    "FOREVER", "Account", "ApiKey", "Fault", "LegacyRecording", "MediaRecording", "Recording",
    "RecordingKind", "StandinState", "VideoRecording", "VoiceRecording",
]

R = TypeVar("R", VoiceRecording, VideoRecording, MediaRecording, LegacyRecording)
DEFAULT_MEDIA_SIZE = 2048
# "The URL returned will only be available for 60 minutes" unless the /Media call gives a Ttl.
SIGNED_URL_TTL_S = 3600


class StandinState:
    """Everything the fake Twilio knows; every public method takes the lock."""

    def __init__(self, seed: int | None = None, media_size: int = DEFAULT_MEDIA_SIZE,
                 latency_s: float = 0.0, public_base_url: str | None = None) -> None:
        # RLock: helpers that take the lock call each other.
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.public_base_url = public_base_url
        self.signing_secret = os.urandom(32)
        self.signed_url_ttl_s = SIGNED_URL_TTL_S
        # Twilio's default; a test can flip it to mimic "public media URLs".
        self.voice_media_requires_auth = True
        self.accounts: dict[str, Account] = {}
        self.api_keys: dict[str, ApiKey] = {}
        # Voice Recording Encryption's public keys (Twilio's Credentials/PublicKeys), PEM by CR SID.
        self.public_keys: dict[str, bytes] = {}
        # Requests held by hang faults, each with the event loop that must wake it.
        self._hangs: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        # reset() returns the knobs to these constructor values.
        self._initial = (media_size, latency_s)
        self._clear()

    def _clear(self) -> None:
        self.store: dict[RecordingKind, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.faults: list[Fault] = []
        self.request_log: list[dict[str, Any]] = []
        self.media_size, self.latency_s = self._initial
        self._last_created = datetime.now(UTC) - timedelta(hours=1)

    def reset(self, keep_accounts: bool = True) -> None:
        """Forget recordings, faults, the log and knobs; accounts survive unless asked."""
        self.release_hangs()
        with self.lock:
            self._clear()
            if not keep_accounts:
                self.accounts.clear()
                self.api_keys.clear()
                self.public_keys.clear()

    # -- accounts and credentials -------------------------------------------------

    def add_account(self, sid: str | None = None, auth_token: str | None = None) -> Account:
        with self.lock:
            account = Account(sid or make_sid("AC", self.rng),
                              auth_token or self.rng.randbytes(16).hex())
            self.accounts[account.sid] = account
            return account

    def add_api_key(self, account_sid: str | None = None, sid: str | None = None,
                    secret: str | None = None) -> ApiKey:
        with self.lock:
            owner = account_sid or self.default_account().sid
            key = ApiKey(sid or make_sid("SK", self.rng), secret or self.rng.randbytes(16).hex(), owner)
            self.accounts[owner].api_keys[key.sid] = key
            self.api_keys[key.sid] = key
            return key

    def default_account(self) -> Account:
        """The first account added; one is created if there is none yet."""
        with self.lock:
            if not self.accounts:
                return self.add_account()
            return next(iter(self.accounts.values()))

    def authenticate(self, username: str, password: str) -> Account | None:
        with self.lock:
            account = self.accounts.get(username)
            if account is not None:
                return account if hmac.compare_digest(account.auth_token, password) else None
            key = self.api_keys.get(username)
            if key is not None and hmac.compare_digest(key.secret, password):
                return self.accounts.get(key.account_sid)
            return None

    # -- recordings ---------------------------------------------------------------

    def _next_created(self) -> datetime:
        # Strictly increasing (by at least 1 µs) so "newest first" equals reverse creation order.
        now = datetime.now(UTC)
        self._last_created = max(now, self._last_created + timedelta(microseconds=1))
        return self._last_created

    def _put(self, factory: Callable[..., R], defaults: dict[str, Any], overrides: dict[str, Any]) -> R:
        merged = {**defaults, **overrides}
        record = factory(**merged)
        self.store[record.kind][record.sid] = record
        return record

    def _base(self, overrides: dict[str, Any]) -> tuple[dict[str, Any], datetime, int]:
        # Normalise in place so the later {**defaults, **overrides} merge cannot undo it.
        overrides.update(_coerce_datetimes(overrides))
        overrides["account_sid"] = overrides.get("account_sid") or self.default_account().sid
        overrides["date_created"] = overrides.get("date_created") or self._next_created()
        overrides["duration"] = int(overrides.get("duration", self.rng.randint(5, 600)))
        created, duration = overrides["date_created"], overrides["duration"]
        return {k: overrides[k] for k in ("account_sid", "date_created", "duration")}, created, duration

    def add_voice(self, **overrides: Any) -> VoiceRecording:
        with self.lock:
            base, created, duration = self._base(overrides)
            status = overrides.get("status", "completed")
            defaults = {
                **base, "sid": make_sid("RE", self.rng), "call_sid": make_sid("CA", self.rng),
                "conference_sid": None, "status": status, "channels": 1, "source": "OutboundAPI",
                "start_time": created, "date_updated": created + timedelta(seconds=duration),
                "price": "-0.0025" if status == "completed" else None,
            }
            public_key_sid = overrides.pop("encrypt_with", None)
            record = self._put(VoiceRecording, defaults, overrides)
            if public_key_sid is not None:
                self._encrypt(record, str(public_key_sid))
            return record

    def add_public_key(self, pem: bytes | str, sid: str | None = None) -> str:
        """Register a public key as Twilio's console does; recordings added with `encrypt_with=`
        its SID are encrypted to it."""
        data = pem.encode() if isinstance(pem, str) else pem
        encryption.public_key(data)
        with self.lock:
            sid = sid or make_sid("CR", self.rng)
            self.public_keys[sid] = data
            return sid

    def _encrypt(self, record: VoiceRecording, public_key_sid: str) -> None:
        if public_key_sid not in self.public_keys:
            raise KeyError(f"no public key {public_key_sid}")
        plaintext = record.media if record.media is not None else media_for(record.sid, "wav", self.media_size, record.channels)
        record.media, record.encryption_details = encryption.encrypt(self.public_keys[public_key_sid], public_key_sid, plaintext)
        record.plaintext = plaintext

    def add_video(self, **overrides: Any) -> VideoRecording:
        with self.lock:
            base, _, _ = self._base(overrides)
            is_video = overrides.get("type", "audio") == "video"
            defaults = {
                **base, "sid": make_sid("RT", self.rng), "room_sid": make_sid("RM", self.rng),
                "source_sid": make_sid("MT", self.rng), "participant_sid": make_sid("PA", self.rng),
                "status": "completed", "type": "audio",
                "container_format": "mkv" if is_video else "mka",
                "codec": "VP8" if is_video else "opus",
                "track_name": f"{'camera' if is_video else 'microphone'}-{self.rng.randbytes(4).hex()}",
                "offset": self.rng.randint(0, 10**9),
            }
            return self._put(VideoRecording, defaults, overrides)

    def add_media(self, **overrides: Any) -> MediaRecording:
        with self.lock:
            base, created, _ = self._base(overrides)
            defaults = {
                **base, "sid": make_sid("KV", self.rng), "processor_sid": make_sid("ZX", self.rng),
                "source_sid": make_sid("RM", self.rng), "status": "completed", "format": "mp4",
                "resolution": "1280x720", "date_updated": created,
            }
            return self._put(MediaRecording, defaults, overrides)

    def add_legacy(self, **overrides: Any) -> LegacyRecording:
        with self.lock:
            base, created, duration = self._base(overrides)
            defaults = {
                **base, "sid": make_sid("RE", self.rng), "call_sid": make_sid("CA", self.rng),
                "date_updated": created + timedelta(seconds=duration),
            }
            return self._put(LegacyRecording, defaults, overrides)

    def add(self, kind: str, **overrides: Any) -> Recording:
        """Dispatch to add_voice/add_video/add_media/add_legacy by name."""
        adders: dict[str, Callable[..., Recording]] = {
            "voice": self.add_voice, "video": self.add_video,
            "media": self.add_media, "legacy": self.add_legacy,
        }
        if kind not in adders:
            raise KeyError(f"unknown recording kind {kind!r}; use one of {sorted(adders)}")
        return adders[kind](**overrides)

    def add_many(self, kind: str, count: int, oldest: datetime, step: timedelta, **overrides: Any) -> list[Recording]:
        """`count` recordings of one kind, created `step` apart from `oldest` on: a backlog to export."""
        with self.lock:
            return [self.add(kind, date_created=oldest + i * step, **overrides) for i in range(count)]

    def add_transcription(self, recording_sid: str, status: str = "in-progress") -> Transcription:
        """A transcription of a voice recording, `in-progress` until a test says otherwise."""
        with self.lock:
            transcription = Transcription(make_sid("TR", self.rng), status, self._next_created())
            self.store["voice"][recording_sid].transcriptions.append(transcription)
            return transcription

    def get(self, kind: RecordingKind, sid: str) -> Any:
        with self.lock:
            return self.store[kind].get(sid)

    def remove(self, kind: RecordingKind, sid: str) -> bool:
        """Forget one recording outright (a hard delete); False if there was none."""
        with self.lock:
            return self.store[kind].pop(sid, None) is not None

    def newest_first(self, kind: RecordingKind) -> list[Any]:
        """Snapshot of one kind, date_created descending (sid breaks ties)."""
        with self.lock:
            items = list(self.store[kind].values())
        return sorted(items, key=lambda r: (r.date_created, r.sid), reverse=True)

    def media_bytes(self, record: Recording, ext: str) -> bytes:
        """The bytes served for a recording: its own `media`, else deterministic ones of media_size."""
        if record.media is not None:
            return record.media
        channels = record.channels if isinstance(record, VoiceRecording) else 1
        return media_for(record.sid, ext, self.media_size, channels)

    def media_body(self, record: Recording, ext: str) -> bytes | tuple[Iterator[bytes], int]:
        """What `media_bytes` serves, except that a body above STREAM_ABOVE comes as (blocks,
        length), made while it is sent."""
        if record.media is None and self.media_size > STREAM_ABOVE:
            channels = record.channels if isinstance(record, VoiceRecording) else 1
            return media_stream(record.sid, ext, self.media_size, channels), self.media_size
        return self.media_bytes(record, ext)

    # -- faults, latency and the request log ---------------------------------------

    def add_fault(self, method: str | None, path_regex: str, status: int, times: int = 1,
                  retry_after: str | None = None, delay_s: float = 0.0, hang: bool = False,
                  location: str | None = None) -> Fault:
        fault = Fault(method, path_regex, status, times, retry_after, delay_s, hang, location)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            return take_fault(self.faults, method, path)

    def hang_started(self) -> asyncio.Event:
        """Called on the server loop by a hanging request; the event fires on release_hangs()."""
        event = asyncio.Event()
        with self.lock:
            self._hangs.add((asyncio.get_running_loop(), event))
        return event

    def hang_finished(self, event: asyncio.Event) -> None:
        with self.lock:
            self._hangs = {(loop, e) for loop, e in self._hangs if e is not event}

    def release_hangs(self) -> None:
        """Let every hanging request answer its fault status now (thread-safe; used at shutdown)."""
        with self.lock:
            hangs = list(self._hangs)
        for loop, event in hangs:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def log_request(self, method: str, path: str, query: str, username: str | None,
                    status: int | None) -> None:
        entry = {"method": method, "path": path, "query": query, "username": username,
                 "status": status, "time": time.time()}
        with self.lock:
            self.request_log.append(entry)

    def requests(self, method: str | None = None, path_contains: str | None = None) -> list[dict[str, Any]]:
        """Copy of the log, optionally only one method and/or paths containing a substring."""
        with self.lock:
            entries = [dict(e) for e in self.request_log]
        return [e for e in entries
                if (method is None or e["method"] == method.upper())
                and (path_contains is None or path_contains in e["path"])]

    # -- signed media URLs --------------------------------------------------------

    def sign(self, sid: str, expires: int, disposition: str = "") -> str:
        # The disposition is signed too, so a holder of the URL cannot change it.
        message = f"{sid}:{expires}:{disposition}".encode()
        return hmac.new(self.signing_secret, message, hashlib.sha256).hexdigest()

    def verify(self, sid: str, expires: int, signature: str, disposition: str = "") -> bool:
        return hmac.compare_digest(self.sign(sid, expires, disposition), signature)


def _coerce_datetimes(overrides: dict[str, Any]) -> dict[str, Any]:
    """ISO strings for datetime fields (control API JSON) become aware datetimes."""
    names = {f.name for cls in (VoiceRecording, VideoRecording, MediaRecording, LegacyRecording)
             for f in fields(cls) if f.type == "datetime"}
    return {k: parse_datetime(v) for k, v in overrides.items() if k in names and isinstance(v, str)}
