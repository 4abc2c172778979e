"""Which address and credentials the console may start with: auth is off only on loopback, on request."""

from __future__ import annotations

import ipaddress

from console.settings import ConsoleSettings


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # A name other than localhost could resolve anywhere.


def auth_is_open(settings: ConsoleSettings, host: str) -> bool:
    return settings.admin_insecure_no_auth and is_loopback(host)


def problems(settings: ConsoleSettings, host: str) -> list[str]:
    """Why the console must not start on `host` with these settings; empty when it may."""
    found = []
    if not settings.redis_configured:
        found.append("REDIS_URL (or REDIS_SENTINELS) is not set")
    if settings.admin_insecure_no_auth:
        if not is_loopback(host):
            found.append(
                f"ADMIN_INSECURE_NO_AUTH is honoured only on a loopback address (127.0.0.1, ::1, localhost), not {host}: "
                "set ADMIN_USERNAME and ADMIN_PASSWORD or ADMIN_TOKEN instead"
            )
        return found
    if bool(settings.admin_username) != bool(settings.admin_password):
        found.append("set both ADMIN_USERNAME and ADMIN_PASSWORD, or neither")
    if not (settings.admin_username and settings.admin_password) and not settings.admin_token:
        where = "" if is_loopback(host) else f" on {host}, which is not a loopback address"
        found.append(
            f"no console credentials{where}: set ADMIN_USERNAME and ADMIN_PASSWORD (the login page) and/or ADMIN_TOKEN "
            "(the JSON API and /metrics); on a loopback address only, ADMIN_INSECURE_NO_AUTH=true turns auth off"
        )
    return found
