"""Media downloads' way out: every redirect hop to a configured Twilio origin or a public HTTPS address.

A hop off the configured origins is resolved once, every address it resolves to must be public,
and the request goes to the first of them by IP (no second resolution an attacker could race);
TLS still names the host (SNI and the certificate check, httpx's `sni_hostname` extension).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import httpx

from workers.failures import PermanentError, TransientError

MAX_REDIRECTS = 5
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Origin = tuple[str, str, int]
Resolver = Callable[[str, int], Sequence[str]]
Credentials = tuple[str, str]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# The resolver reads "2130706433", "0177.0.0.1" or "0x7f.1" as IPv4 (inet_aton); no DNS name ends so.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class Refused(PermanentError):
    """A hop the policy does not allow; its message names scheme, host and port, never the query."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # A name that does not resolve now may resolve later (DNS outage); the check runs again then.
        raise TransientError(f"cannot resolve {host}: {exc.strerror}") from None
    return [str(info[4][0]) for info in infos]


def _embedded_v4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries to a gateway: mapped, 6to4, Teredo, NAT64."""
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
    return [inner for inner in found if inner is not None]


def _plainly_public(address: Address) -> bool:
    # is_global alone lets IPv4 multicast through (3.11), hence every flag.
    special = (address.is_private, address.is_loopback, address.is_link_local, address.is_multicast,
               address.is_reserved, address.is_unspecified)
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return address.is_global and not any(special) and not site_local


def is_public(address: str | Address) -> bool:
    parsed = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = _embedded_v4(parsed) if isinstance(parsed, ipaddress.IPv6Address) else []
    return all(_plainly_public(candidate) for candidate in (parsed, *inner))


def origin_of(url: httpx.URL) -> Origin:
    return url.scheme, url.raw_host.decode("ascii").lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def origins(base_urls: Iterable[str]) -> frozenset[Origin]:
    return frozenset(origin_of(httpx.URL(url)) for url in base_urls)


def where(url: httpx.URL) -> str:
    """Scheme, host and port: what a message may show of a URL whose query can be a credential."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def parse(raw: str, what: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        return base.join(raw) if base is not None else httpx.URL(raw)
    except httpx.InvalidURL:
        raise Refused(f"refusing {what} an invalid URL") from None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def screen(url: httpx.URL, allowed: frozenset[Origin], what: str) -> bool:
    """True for a configured Twilio origin. Refuses what no DNS answer could make acceptable;
    a public-looking name is left to `Egress`, which resolves it when it connects."""
    if url.userinfo:
        raise Refused(f"refusing {what} {where(url)}: credentials in the URL")
    if url.raw_host and origin_of(url) in allowed:
        return True
    if url.scheme != "https" or not url.host:
        raise Refused(f"refusing {what} {where(url)}: not HTTPS, not a configured host")
    literal = _literal(url.host)
    if literal is None and _NUMERIC_LABEL.match(url.host.rstrip(".").rsplit(".", 1)[-1]):
        raise Refused(f"refusing {what} {where(url)}: neither a host name nor a plain IP address")
    if literal is not None and not is_public(literal):
        raise Refused(f"refusing {what} {where(url)}: {literal} is not a public address")
    return False


def _basic(credentials: Credentials) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode("ascii")


class Egress:
    """Sends GETs through one pooled httpx client (which must not follow redirects itself)."""

    def __init__(self, client: httpx.Client, allowed: frozenset[Origin], resolver: Resolver = system_resolver,
                 public: Callable[[Address], bool] = is_public) -> None:
        self.client = client
        self.allowed = allowed
        self.resolver = resolver
        self.public = public  # a seam: tests have no public HTTPS server, only loopback ones

    def request_for(self, url: httpx.URL, auth: Credentials | None, what: str = "media URL on", method: str = "GET",
                    content: bytes | None = None, extra: dict[str, str] | None = None) -> httpx.Request:
        """The request for one hop; `auth` is sent only if the hop is on a configured origin."""
        if screen(url, self.allowed, what):
            headers = {"Authorization": _basic(auth)} if auth else {}
            return self.client.build_request(method, url, headers={**headers, **(extra or {})}, content=content)
        # Closed after use, so no later request to that IP can ride a connection verified for another name.
        headers = {"Host": url.netloc.decode("ascii"), "Connection": "close", **(extra or {})}
        if _literal(url.host) is not None:
            return self.client.build_request(method, url, headers=headers, content=content)  # screen() checked the address
        pinned = url.copy_with(host=str(self._resolved(url, what)))
        name = url.raw_host.decode("ascii")
        return self.client.build_request(method, pinned, headers=headers, content=content,
                                         extensions={"sni_hostname": name})

    def _resolved(self, url: httpx.URL, what: str) -> Address:
        """One resolution, whose first address the request then goes to: none left to race."""
        host = url.raw_host.decode("ascii")
        addresses = [ipaddress.ip_address(answer) for answer in self.resolver(host, origin_of(url)[2])]
        if not addresses:
            raise Refused(f"refusing {what} {where(url)}: {host} has no address")
        internal = [address for address in addresses if not self.public(address)]
        if internal:
            raise Refused(f"refusing {what} {where(url)}: {host} resolves to {internal[0]}, not a public address")
        return addresses[0]

    @contextmanager
    def stream(self, url: str, auth: Credentials | None) -> Iterator[httpx.Response]:
        """GET `url`, following at most MAX_REDIRECTS redirects; yields the final, unread response.
        Credentials go only to the origin first asked, and only if it is a configured one."""
        response = self._follow(url, auth)
        try:
            yield response
        finally:
            response.close()

    def _follow(self, raw: str, auth: Credentials | None) -> httpx.Response:
        what = "media URL on"
        url = parse(raw, what)
        first = origin_of(url)
        for _ in range(MAX_REDIRECTS + 1):
            request = self.request_for(url, auth if origin_of(url) == first else None, what)
            response = self._send(request)
            if not response.is_redirect:
                return response
            location = response.headers["location"]
            response.close()
            what = "media redirect to"
            url = parse(location, what, base=url)
        raise Refused(f"refusing media: more than {MAX_REDIRECTS} redirects")

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.client.send(request, stream=True, follow_redirects=False)
        except httpx.RemoteProtocolError as exc:
            # httpx parses a redirect's Location even when not following it, and says so only in
            # its message: a Location it cannot parse is the answer's fault, not the network's.
            if str(exc).startswith("Invalid URL in location header"):
                raise Refused("refusing media redirect to an invalid URL") from None
            raise
