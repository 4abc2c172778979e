"""StandinServer: runs the stand-in app under uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from .app import create_app
from .state import StandinState

START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 10.0
# Requests still hanging (fault hang=True) at shutdown are cancelled after this long.
GRACEFUL_SHUTDOWN_S = 1


class StandinServer:
    """Context manager: `with StandinServer() as srv: srv.base_url, srv.state`."""

    def __init__(self, state: StandinState | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or StandinState()
        self.host = host
        self._socket = _bound_socket(host, port)
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            create_app(self.state), lifespan="off", log_level="warning", access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"standin-{self.port}", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + START_DEADLINE_S
        # Poll the flag uvicorn sets once it is listening; bail out if the thread died.
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"stand-in did not start on {self.base_url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        # Hanging requests answer first, so shutdown need not cancel them mid-flight.
        self.state.release_hangs()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_DEADLINE_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_DEADLINE_S)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _bound_socket(host: str, port: int) -> socket.socket:
    # Binding here (port 0 = any free port) means the port is known before uvicorn starts
    # and no other process can take it in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
