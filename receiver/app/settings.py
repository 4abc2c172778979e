"""The public receiver's settings: how it verifies, limits and answers callbacks, and where it spools."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from receiver.kernel.settings import SharedSettings


class ReceiverSettings(SharedSettings):
    """The receiver's own settings on top of the shared ones."""

    # Replicas that must confirm an event (Redis WAIT) before the receiver answers 2xx; an
    # unconfirmed event is spooled instead. Replication is asynchronous, so without this a
    # failover can lose the last events the old master acknowledged. With Sentinel: all replicas.
    redis_wait_replicas: int = Field(default=0, ge=0)
    # The receiver's transport for its enqueue: "fast" writes on a socket taken over from redis-py
    # (receiver/app/redis_pipe/command_pipe.py, leans on redis-py internals); "stock" goes through
    # redis-py's public asyncio client, for when an upgrade breaks the fast one.
    redis_pipe: Literal["fast", "stock"] = "fast"

    # Callback verification.
    public_base_url: str | None = Field(
        default=None, description="Scheme and host Twilio calls, e.g. https://hooks.example.com"
    )
    trust_proxy_headers: bool = Field(
        default=False, description="Rebuild the signed URL from X-Forwarded-Proto/Host"
    )

    # Twilio's callbacks are under 4 KB with a few dozen fields: a body far beyond that is not
    # one, and every byte and field of it is work the signature check would do for nothing.
    max_body_bytes: int = Field(default=16 * 1024, gt=0)
    max_form_fields: int = Field(default=100, gt=0)
    # A client that sent its headers has this long to send the whole body, then gets 408.
    body_timeout_seconds: float = Field(default=5.0, gt=0)
    # Signature failures explained per second and process (each re-checks a dozen URL variants);
    # beyond it the 403's log line says "diagnosis skipped". 0 turns the explanation off.
    signature_diagnoses_per_second: float = Field(default=10.0, ge=0)

    # When Redis does not take an event within this bound it goes to the local spool instead.
    spool_after_seconds: float = 2.0
    spool_dir: Path | None = Field(default=None, description="Defaults to DATA_DIR/spool")
    # 204: Twilio is told all is well once the event is spooled (the default; Twilio does not
    # retry by default). 503: for users who configured Twilio to retry on errors.
    outage_response: Literal[204, 503] = 204

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str | None) -> str | None:
        # Without a scheme and host every rebuilt URL, so every signature check, would be wrong.
        if value:
            value = value.rstrip("/")
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be the scheme and host Twilio calls, e.g. https://hooks.example.com")
        return value

    @field_validator("outage_response", mode="before")
    @classmethod
    def _status_from_text(cls, value: object) -> object:
        # From the environment it is the text "503", which a Literal of ints never equals.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @property
    def spool_path(self) -> Path:
        return (self.spool_dir or self.data_dir / "spool") / "events.sqlite3"
