"""The console's settings: where it listens, who may sign in, and which proxies it believes."""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

from pydantic import Field, SecretStr, field_validator

from receiver.kernel.settings import SharedSettings

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConsoleSettings(SharedSettings):
    """The admin console's own settings on top of the shared ones (a separate app; never mounted
    on the public one)."""

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
    # S3's presigned links last at most 7 days; a player seeking after its link lapsed needs a reload.
    admin_media_link_seconds: int = Field(
        default=900, ge=1, le=7 * 24 * 3600, description="How long a media link to object storage works"
    )
    # Comma-separated IPs or CIDRs of proxies in front of the console. Only from these does the
    # console believe X-Forwarded-For (the sign-in brake counts per client address); empty: none.
    admin_trusted_proxies: str = ""

    @field_validator("admin_trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        _networks(value)  # fail at startup, not at the first sign-in
        return value

    @property
    def trusted_proxies(self) -> tuple[IPNetwork, ...]:
        return _networks(self.admin_trusted_proxies)


def _networks(value: str) -> tuple[IPNetwork, ...]:
    """`10.0.0.1, 10.1.0.0/16, ::1` → networks; a bare address is a network of one."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"ADMIN_TRUSTED_PROXIES: {exc}") from None
