"""The workers' settings: Twilio's REST hosts, storage, threads, retries and the reconciler's schedule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from receiver.kernel.settings import SharedSettings
from receiver.kernel.webhook_endpoints import Endpoint, parse

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

    # Where archives go (STORAGE_DIR, STORAGE_URL, STORAGE_ENDPOINT_URL) is shared: the console reads them too.
    storage_sse: Literal["none", "AES256", "aws:kms"] = "none"
    storage_sse_kms_key_id: str | None = None
    storage_class: str | None = Field(default=None, description="S3 storage class, e.g. STANDARD_IA")
    media_format: Literal["wav", "mp3"] = "wav"
    # Voice Recording Encryption: `<public key SID>.pem` files (passwordless RSA private keys in
    # PEM), read at each use; encrypted media is decrypted into storage. KEEP_ENCRYPTED stores it
    # as Twilio served it instead, its record keeping what decrypting it later takes.
    recording_keys_dir: Path | None = Field(default=None, description="Private keys named <CR sid>.pem")
    keep_encrypted: bool = False

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

    # Signed events to your endpoints (Standard Webhooks): a JSON list of {name, url, secrets, events}.
    webhook_endpoints: SecretStr | None = None
    # Endpoints on loopback or private addresses (and plain http) only when this is true.
    webhook_allow_private: bool = False
    # A delivery is retried, with growing delays, for this long before it is given up.
    webhook_retry_for: str = "1d"
    # The first retry's delay; each next one doubles (with jitter) up to WEBHOOK_MAX_DELAY.
    webhook_first_retry: str = "30s"
    webhook_max_delay: str = "6h"
    # An endpoint whose every attempt failed for this long is disabled until re-enabled.
    webhook_disable_after: str = "5d"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # The console's public address; events then link to the recording's page there.
    console_public_url: str | None = None

    @field_validator("webhook_endpoints")
    @classmethod
    def _check_endpoints(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse(value.get_secret_value())
        return value

    @field_validator("console_public_url")
    @classmethod
    def _check_console_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL, e.g. https://console.example.com")
        return value.rstrip("/") if value else value

    @property
    def webhook_endpoint_list(self) -> list[Endpoint]:
        return parse(self.webhook_endpoints.get_secret_value()) if self.webhook_endpoints else []

    @property
    def webhook_retry_for_seconds(self) -> int:
        return delay_seconds(self.webhook_retry_for)

    @property
    def webhook_first_retry_seconds(self) -> int:
        return delay_seconds(self.webhook_first_retry)

    @property
    def webhook_max_delay_seconds(self) -> int:
        return delay_seconds(self.webhook_max_delay)

    @property
    def webhook_disable_after_seconds(self) -> int:
        return delay_seconds(self.webhook_disable_after)

    @field_validator("delete_delay", "delete_transcription_wait", "webhook_retry_for", "webhook_first_retry",
                     "webhook_max_delay", "webhook_disable_after")
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

