"""The settings every role shares (Redis, Twilio credentials, the job's shape, logging); each role extends them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REDACTED = "***"
REDIS_SCHEMES = ("redis", "rediss", "unix")
STORAGE_SCHEMES = ("file", "s3")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SharedSettings(BaseSettings):
    """What every role needs: where Redis is, whose Twilio account, the job's shape, logging.
    Each role's settings extend these (receiver/app/settings.py, workers/settings.py,
    console/settings.py), and `workers/commands/settings.py` joins them for the commands that run
    several roles. Secrets are `SecretStr`, so a repr or log never shows them; REDIS_URL stays a
    plain string (every Redis client takes it as one) and is redacted in the repr."""

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

    # The Twilio account(s): the receiver checks signatures with them, workers call the REST API.
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

    # Storage and the embedded Redis.
    data_dir: Path = Path("data")
    # Where archives are: workers write them, the console plays them back.
    storage_dir: Path | None = Field(default=None, description="Defaults to DATA_DIR/recordings")
    # A local directory (`file:///path` or a plain path) or S3-compatible object storage
    # (`s3://bucket/prefix`); wins over STORAGE_DIR. Credentials never come from here: only
    # from the standard AWS environment variables and profiles.
    storage_url: str | None = Field(default=None, description="Defaults to STORAGE_DIR")
    storage_endpoint_url: str | None = Field(default=None, description="S3 endpoint for MinIO, R2, GCS interop")

    # The job's shape: the receiver, the reconciler and the console's replays all enqueue it.
    queue_name: str = "recordings"
    # Must outlive every RQ job and retry, so a late duplicate is still recognised.
    ledger_ttl_seconds: int = 90 * 24 * 3600
    job_timeout_seconds: int = 900
    retry_max: int = 8

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

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

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: str | None) -> str | None:
        if value:
            _sentinel_addresses(value)  # fail at startup, not at the first Redis call
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "redis_url" and isinstance(value, str) else value

    @property
    def redis_configured(self) -> bool:
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return _sentinel_addresses(self.redis_sentinels or "")


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
