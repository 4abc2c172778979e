"""Checks that `up` can listen where it was told to, before it prints or starts anything."""

from __future__ import annotations

import contextlib
import itertools
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Listener:
    """A server `up` will start: who it is, where it listens, and how a user picks another port."""

    name: str
    host: str
    port: int
    setting: str


def problem(listeners: list[Listener]) -> str | None:
    """The first reason these servers cannot all listen, as one line; None when they can."""
    for first, second in itertools.combinations(listeners, 2):
        # Port 0 asks for any free port, so two of them never collide.
        if first.port == second.port and first.port != 0:
            return (
                f"{first.name} and {second.name} are both set to port {first.port}: "
                f"choose another with {first.setting} or {second.setting}"
            )
    for listener in listeners:
        error = bind_error(listener.host, listener.port)
        if error:
            return (
                f"{listener.name} cannot listen on {address(listener.host, listener.port)} ({error}): "
                f"choose another port with {listener.setting}"
            )
    return None


def bind_error(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port now; None when it could.

    Binds the way uvicorn's server will (asyncio's create_server: every address the host resolves
    to, SO_REUSEADDR, IPv6 sockets v6-only) and closes again, so the answer is the one uvicorn
    would get: a port held only by connections in TIME_WAIT is free, one with a listener is not."""
    try:
        infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return exc.strerror or str(exc)
    # All held at once, as uvicorn holds them: "localhost" must be free on both 127.0.0.1 and ::1.
    with contextlib.ExitStack() as held:
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            try:
                sock = held.enter_context(socket.socket(family, kind, proto))
            except OSError:
                continue  # a family this machine lacks; asyncio skips it too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                return exc.strerror or str(exc)
    return None


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
