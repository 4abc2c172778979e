"""Every setting, read from the environment in one place and passed around explicitly."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


REDACTED = "***"
REDIS_SCHEMES = ("redis", "rediss", "unix")
STORAGE_SCHEMES = ("file", "s3")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Configuration of every role. Secrets are `SecretStr`, so a repr or log never shows them;
    REDIS_URL stays a plain string (every Redis client takes it as one) and is redacted in the repr."""

    # An empty variable (`STORAGE_DIR=`) means unset, not "the current directory" or an empty secret.
    # A rejected value is not repeated in the error: it may be a secret in the wrong shape.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, env_ignore_empty=True, hide_input_in_errors=True
    )

    # Redis: unset means `up` starts an embedded redis-server under DATA_DIR.
    redis_url: str | None = None
    # Redis Sentinel: comma-separated host:port of the sentinels. When set, the master's address
    # comes from them; REDIS_URL becomes optional and only lends its db, username and password
    # (its host and port are ignored), e.g. redis://:secret@/0.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = "mymaster"
    # The sentinels' own `requirepass`, when they have one (the master's is in REDIS_URL).
    redis_sentinel_password: SecretStr | None = None
    # Replicas that must confirm an event (Redis WAIT) before the receiver answers 2xx; an
    # unconfirmed event is spooled instead. Replication is asynchronous, so without this a
    # failover can lose the last events the old master acknowledged. With Sentinel: all replicas.
    redis_wait_replicas: int = Field(default=0, ge=0)
    # The receiver's transport for its enqueue: "fast" writes on a socket taken over from redis-py
    # (receiver/redis_pipe/command_pipe.py, leans on redis-py internals); "stock" goes through
    # redis-py's public asyncio client, for when an upgrade breaks the fast one.
    redis_pipe: Literal["fast", "stock"] = "fast"

    # Callback verification.
    public_base_url: str | None = Field(
        default=None, description="Scheme and host Twilio calls, e.g. https://hooks.example.com"
    )
    trust_proxy_headers: bool = Field(
        default=False, description="Rebuild the signed URL from X-Forwarded-Proto/Host"
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_auth_token_secondary: SecretStr | None = None
    twilio_api_key_sid: str | None = None
    twilio_api_key_secret: SecretStr | None = None
    # SharedKey webhook signing (X-Twilio-Webhooks-Signature-Settings): JSON {key id: secret}.
    twilio_webhook_shared_keys: dict[str, SecretStr] = Field(default_factory=dict)
    twilio_accounts_file: Path | None = Field(
        default=None, description="JSON file of subaccounts: {AC…: {auth_token, …}}"
    )

    # Twilio REST hosts; override to point at a stand-in or an egress proxy.
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_video_base_url: str = "https://video.twilio.com"
    twilio_media_base_url: str = "https://media.twilio.com"
    twilio_timeout_seconds: float = 15.0

    # Storage and the embedded Redis.
    data_dir: Path = Path("data")
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

    # Receiver behaviour.
    # Twilio's callbacks are under 4 KB with a few dozen fields: a body far beyond that is not
    # one, and every byte and field of it is work the signature check would do for nothing.
    max_body_bytes: int = Field(default=16 * 1024, gt=0)
    max_form_fields: int = Field(default=100, gt=0)
    # A client that sent its headers has this long to send the whole body, then gets 408.
    body_timeout_seconds: float = Field(default=5.0, gt=0)
    # Signature failures explained per second and process (each re-checks a dozen URL variants);
    # beyond it the 403's log line says "diagnosis skipped". 0 turns the explanation off.
    signature_diagnoses_per_second: float = Field(default=10.0, ge=0)
    queue_name: str = "recordings"
    # Must outlive every RQ job and retry, so a late duplicate is still recognised.
    ledger_ttl_seconds: int = 90 * 24 * 3600

    # When Redis does not take an event within this bound it goes to the local spool instead.
    spool_after_seconds: float = 2.0
    spool_dir: Path | None = Field(default=None, description="Defaults to DATA_DIR/spool")
    # 204: Twilio is told all is well once the event is spooled (the default; Twilio does not
    # retry by default). 503: for users who configured Twilio to retry on errors.
    outage_response: Literal[204, 503] = 204

    # Worker behaviour. Jobs wait on Twilio, so threads in one process multiply throughput.
    worker_threads: int = 8
    # A running job's lease; a worker killed mid-job has its job retried once the lease lapses.
    worker_lease_seconds: int = 60
    worker_maintenance_seconds: int = 30
    job_timeout_seconds: int = 900
    retry_max: int = 8
    # First backoff step; doubles per attempt, with jitter, up to 15 minutes.
    retry_base_seconds: float = 2.0
    not_found_retries: int = 3

    # Admin console (a separate app; never mounted on the public one).
    admin_host: str = "127.0.0.1"
    admin_port: int = 8001
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    admin_token: SecretStr | None = Field(default=None, description="Bearer token for the JSON API")
    admin_secret_key: SecretStr | None = Field(default=None, description="Signs session cookies")
    admin_insecure_no_auth: bool = Field(default=False, description="Only honoured on a loopback bind")
    admin_secure_cookies: bool = Field(
        default=False, description="Always mark console cookies Secure (they are whenever a request arrives over HTTPS)"
    )
    admin_session_hours: float = Field(default=12.0, gt=0, description="How long a console login lasts")
    # Comma-separated IPs or CIDRs of proxies in front of the console. Only from these does the
    # console believe X-Forwarded-For (the sign-in brake counts per client address); empty: none.
    admin_trusted_proxies: str = ""

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

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("public_base_url", "twilio_api_base_url", "twilio_video_base_url", "twilio_media_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str | None) -> str | None:
        # Without a scheme and host every rebuilt URL, so every signature check, would be wrong.
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be the scheme and host Twilio calls, e.g. https://hooks.example.com")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        # Refused here, once, in words: redis-py would raise at the first connection, deep inside a
        # command. The value is never repeated: it holds the password.
        if value and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://, e.g. redis://:PASSWORD@host:6379/0")
        return value

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

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @field_validator("outage_response", mode="before")
    @classmethod
    def _status_from_text(cls, value: object) -> object:
        # From the environment it is the text "503", which a Literal of ints never equals.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: str | None) -> str | None:
        if value:
            _sentinel_addresses(value)  # fail at startup, not at the first Redis call
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "redis_url" and isinstance(value, str) else value

    @field_validator("admin_trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        _networks(value)  # fail at startup, not at the first sign-in
        return value

    @property
    def redis_configured(self) -> bool:
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return _sentinel_addresses(self.redis_sentinels or "")

    @property
    def trusted_proxies(self) -> tuple[IPNetwork, ...]:
        return _networks(self.admin_trusted_proxies)

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

    @property
    def spool_path(self) -> Path:
        return (self.spool_dir or self.data_dir / "spool") / "events.sqlite3"


def redact_url(url: str) -> str:
    """`url` with its password (in the user part or a `password=` query) shown as ***, for any
    repr, log line, banner or error that names a Redis."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        netloc = f"{parts.username or ''}:{REDACTED}@{netloc.rpartition('@')[2]}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        query = urlencode([(key, REDACTED if key == "password" else value) for key, value in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    # Spelled out rather than urlunsplit, which drops the `//` of a socket URL (unix:///path).
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def _sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """`host:port,[::1]:26380,host` → [(host, port), …]; a missing port is Sentinel's 26379."""
    addresses = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, port = item, "26379"
        if item.startswith("[") and "]:" in item:  # an IPv6 address must be bracketed
            host, _, port = item.partition("]:")
        elif not item.startswith("[") and ":" in item:
            host, _, port = item.rpartition(":")
        host = host.strip("[]")
        if not host or (":" in host and not item.startswith("[")) or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS entry {item!r} is not host:port")
        addresses.append((host, int(port)))
    if not addresses:
        raise ValueError("REDIS_SENTINELS names no sentinel")
    return addresses


def _networks(value: str) -> tuple[IPNetwork, ...]:
    """`10.0.0.1, 10.1.0.0/16, ::1` → networks; a bare address is a network of one."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"ADMIN_TRUSTED_PROXIES: {exc}") from None


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; explicit overrides win (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
