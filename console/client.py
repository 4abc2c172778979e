"""Who is on the other end: the peer's address, or the one a trusted proxy forwarded in X-Forwarded-For."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

from console.settings import IPNetwork

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_SCHEMES = frozenset({"http", "https"})


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _within(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: Sequence[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in networks)


def _forwarded_for(scope: Scope) -> list[str]:
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
    return [part.strip() for part in ",".join(values).split(",") if part.strip()]


def address(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """The client the brake counts: walk X-Forwarded-For from the right past trusted proxies only.

    A client can write anything into the header, but each trusted proxy appends the address it
    saw; so the right-most entry no trusted proxy vouches for is the first one nobody could forge.
    """
    peer = scope["client"][0] if scope.get("client") else "unknown"
    current = _address(peer)
    if not _within(current, trusted):
        return bucket(peer)
    for entry in reversed(_forwarded_for(scope)):
        current = _address(entry)
        if current is None:
            break  # garbage a proxy would not write: stop at the last address we could vouch for
        if not _within(current, trusted):
            return bucket(str(current))
        peer = str(current)
    return bucket(peer)


def bucket(host: str) -> str:
    """One key per IPv4 address but per IPv6 /64: a single host usually owns a whole /64."""
    parsed = _address(host)
    if parsed is None:
        return host[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def scheme(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """https when a trusted or same-host proxy says the browser used it: only decides the cookies' Secure flag."""
    peer = _address(scope["client"][0]) if scope.get("client") else None
    if not _within(peer, tuple(trusted) + LOOPBACK):
        return str(scope.get("scheme", "http"))
    proto = next((v.decode("latin-1").strip().lower() for n, v in scope["headers"] if n == b"x-forwarded-proto"), "")
    return proto if proto in _SCHEMES else str(scope.get("scheme", "http"))
