"""The workers' settings: Twilio's REST hosts, storage, threads, retries and the reconciler's schedule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from receiver.kernel.settings import SharedSettings

STORAGE_SCHEMES = ("file", "s3")
DELAY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 24 * 3600}
_DELAY = re.compile(r"(\d{1,7})([smhd])")


def delay_seconds(text: str) -> int:
    """`7d`, `12h`, `30m`, `45s` or `0` in seconds; ValueError for anything else."""
    value = text.strip().lower()
    if value == "0":
        return 0
    match = _DELAY.fullmatch(value)
    if match is None:
        raise ValueError("must be 0 or a number with a unit: 30m, 12h or 7d (s, m, h, d)")
    return int(match.group(1)) * DELAY_UNITS[match.group(2)]


class WorkerSettings(SharedSettings):
    """The workers' own settings on top of the shared ones."""

    # Twilio REST hosts; override to point at a stand-in or an egress proxy.
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_video_base_url: str = "https://video.twilio.com"
    twilio_media_base_url: str = "https://media.twilio.com"
    twilio_timeout_seconds: float = 15.0

    storage_dir: Path | None = Field(default=None, description="Defaults to DATA_DIR/recordings")
    # Where archives go: a local directory (`file:///path` or a plain path) or S3-compatible object
    # storage (`s3://bucket/prefix`); wins over STORAGE_DIR. Credentials never come from here: only
    # from the standard AWS environment variables and profiles.
    storage_url: str | None = Field(default=None, description="Defaults to STORAGE_DIR")
    storage_endpoint_url: str | None = Field(default=None, description="S3 endpoint for MinIO, R2, GCS interop")
    storage_sse: Literal["none", "AES256", "aws:kms"] = "none"
    storage_sse_kms_key_id: str | None = None
    storage_class: str | None = Field(default=None, description="S3 storage class, e.g. STANDARD_IA")
    media_format: Literal["wav", "mp3"] = "wav"

    # Jobs wait on Twilio, so threads in one process multiply throughput.
    worker_threads: int = 8
    # A running job's lease; a worker killed mid-job has its job retried once the lease lapses.
    worker_lease_seconds: int = 60
    worker_maintenance_seconds: int = 30
    # First backoff step; doubles per attempt, with jitter, up to 15 minutes.
    retry_base_seconds: float = 2.0
    not_found_retries: int = 3

    # Reconciler: lists recordings at Twilio and queues those no callback brought.
    # Seconds between scheduled passes; 0 turns the schedule off (`reconcile` still works).
    reconcile_interval_seconds: int = Field(default=600, ge=0)
    # Each pass re-lists this far behind the newest recording the last one saw, so a recording
    # that shows up late in Twilio's lists never falls between two passes.
    reconcile_overlap_seconds: int = Field(default=3600, ge=0)
    # How far back the first pass of an account and source looks (no watermark yet).
    reconcile_lookback_seconds: int = Field(default=2 * 24 * 3600, gt=0)
    # Comma-separated sources the scheduled pass covers (voice, video, media, legacy).
    reconcile_sources: str = "voice,video,media,legacy"
    # Requested list page size; clamped to each API's own maximum (video's is 100).
    reconcile_page_size: int = Field(default=1000, ge=1)
    # Export (`export`): at most this many of its jobs queued and not settled at once (back-pressure).
    export_max_in_flight: int = Field(default=1000, ge=1)

    # Deleting at Twilio: `off`, or `after-archive` (each recording's stored copy re-verified first).
    delete_at_twilio: Literal["off", "after-archive"] = "off"
    # How long after its archive a recording is deleted at Twilio: `7d`, `12h`, `30m` or `0` (at once).
    delete_delay: str = "7d"

    # How long a voice recording's deletion waits for its transcriptions still in progress at
    # Twilio (same units; `0`: never looks). Past it the recording is deleted all the same.
    delete_transcription_wait: str = "1h"

    @field_validator("delete_delay", "delete_transcription_wait")
    @classmethod
    def _check_delay(cls, value: str) -> str:
        delay_seconds(value)
        return value.strip().lower()

    @property
    def delete_delay_seconds(self) -> int:
        return delay_seconds(self.delete_delay)

    @property
    def delete_transcription_wait_seconds(self) -> int:
        return delay_seconds(self.delete_transcription_wait)

    @field_validator("twilio_api_base_url", "twilio_video_base_url", "twilio_media_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str | None) -> str | None:
        # The value is never repeated: a URL pasted with a key in it must not reach a log.
        if value and "://" in value:
            parts = urlsplit(value)
            if parts.scheme not in STORAGE_SCHEMES:
                raise ValueError("must be a path, file:///path or s3://bucket/prefix")
            if parts.username is not None or parts.password is not None or parts.query:
                raise ValueError("must not carry credentials: use the standard AWS environment variables or profiles")
            if parts.scheme == "s3" and not parts.hostname:
                raise ValueError("s3:// needs a bucket, e.g. s3://my-recordings/prefix")
            if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
                raise ValueError("file:// takes an absolute path on this machine, e.g. file:///var/lib/recordings")
        return value

    @property
    def storage_path(self) -> Path:
        """The local archive directory (with s3:// storage: where it would be, unused)."""
        url = self.storage_url
        if url and url.startswith("file://"):
            return Path(unquote(urlsplit(url).path))
        if url and "://" not in url:
            return Path(url)
        return self.storage_dir or self.data_dir / "recordings"

    @property
    def storage_bucket(self) -> tuple[str, str] | None:
        """(bucket, key prefix without slashes) for s3:// storage, else None."""
        if not self.storage_url or not self.storage_url.startswith("s3://"):
            return None
        parts = urlsplit(self.storage_url)
        return parts.netloc, parts.path.strip("/")
