"""A loopback TCP proxy that cuts the connection instead of forwarding a chosen command."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class CuttingProxy:
    """Forwards bytes both ways to `upstream`; a client write containing `cut_on` is dropped and
    both sides are closed, as if the server had died just before that command reached it."""

    def __init__(self, upstream_port: int, cut_on: bytes) -> None:
        self._upstream_port = upstream_port
        self._cut_on = cut_on
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream_port))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self._cut_on in data:
                    self.cuts += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        for side in (source, sink):
            with contextlib.suppress(OSError):
                side.shutdown(socket.SHUT_RDWR)
            side.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._closing.set()
        self._listener.close()
