"""A counting TCP relay in front of Redis: which commands a client sent and how many bytes Redis answered."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import hiredis

T = TypeVar("T")

# What redis-py sends to open or keep a connection, not to do the caller's work: a request that
# happens to open a new pooled connection must not count as more work than one that reuses one.
CONNECTION_COMMANDS = frozenset({"AUTH", "CLIENT", "HELLO", "PING", "READONLY", "SELECT"})


@dataclass(frozen=True)
class Usage:
    """The Redis work of one stretch of time: commands by name and the bytes of their replies."""

    commands: Counter[str] = field(default_factory=Counter)
    reply_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(self.commands.values())


class RedisMeter:
    """Relays every connection to the Redis at `port` and counts what goes through.

    A command is counted when it arrives, before it is passed on, and reply bytes before they
    are passed back; so once a client has its answer, everything that led to it is counted,
    and a reading taken then needs no waiting.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", password: str | None = None) -> None:
        self._upstream = (host, port)
        self._password = password
        self._lock = threading.Lock()
        self._commands: Counter[str] = Counter()
        self._reply_bytes = 0
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        auth = f":{self._password}@" if self._password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def reading(self) -> Usage:
        with self._lock:
            return Usage(Counter(self._commands), self._reply_bytes)

    def measure(self, action: Callable[[], T]) -> tuple[T, Usage]:
        """Run `action`; return its result and the Redis work done meanwhile, connection upkeep left out."""
        before = self.reading()
        result = action()
        after = self.reading()
        commands = after.commands - before.commands
        for name in CONNECTION_COMMANDS:
            commands.pop(name, None)
        return result, Usage(commands, after.reply_bytes - before.reply_bytes)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            sockets, threads = [self._listener, *self._sockets], list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> RedisMeter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._requests, client, server)
            self._spawn(self._replies, server, client)

    def _requests(self, source: socket.socket, sink: socket.socket) -> None:
        reader = hiredis.Reader()
        while data := _recv(source):
            reader.feed(data)
            names = []
            while (command := reader.gets()) is not False:
                names.append(command[0].decode().upper())
            with self._lock:
                self._commands.update(names)
            if not _send(sink, data):
                break
        _close_write(sink)

    def _replies(self, source: socket.socket, sink: socket.socket) -> None:
        while data := _recv(source):
            with self._lock:
                self._reply_bytes += len(data)
            if not _send(sink, data):
                break
        _close_write(sink)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def _close_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
