"""An S3 server on loopback that misbehaves on purpose, for the chaos tool and the fault tests:
moto behind a layer that answers 503 SlowDown and 500 InternalError, cuts connections mid-upload
or after the write, and restarts (refusing connections for a while), counting every completed write.

A restart keeps every object and every unfinished multipart upload, as S3 (or MinIO restarted on
its disk) does: objects a server acknowledged are durable, so moto's in-memory state lives on in
this process while its HTTP server is stopped and started again on the same port. What clients
meet is what a restart looks like from outside: connections refused while it is down, and the
requests in flight when it went down cut without an answer (some of them written, some not).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.s3_server import Environ, StartResponse, _QuietHandler, client

_ERRORS = {
    "slow_down": ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": ("500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass
class Faults:
    """Chances, per request, of each fault: answers to any request; cuts to writes (PUT/POST)."""

    slow_down: float = 0.0
    internal: float = 0.0
    cut_mid_upload: float = 0.0  # part of the body read, then the connection cut: nothing written
    cut_after_write: float = 0.0  # written, then the connection cut before the answer
    # Which requests may meet a fault, and how many faults at most (None: no limit).
    picks: Callable[[Environ], bool] = lambda environ: True
    limit: int | None = None

    def roll(self, environ: Environ, rng: random.Random) -> float | None:
        """A number the chances are measured against, or None when this request meets no fault."""
        if not self.picks(environ) or self.limit == 0:
            return None
        return rng.random()

    def spend(self) -> None:
        if self.limit is not None:
            self.limit -= 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_of(environ: Environ) -> str | None:
    """The key a request creates an object at (PutObject, CompleteMultipartUpload), else None."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    method = environ["REQUEST_METHOD"]
    if method == "PUT" and "partNumber" not in query and "HTTP_X_AMZ_COPY_SOURCE" not in environ and environ["PATH_INFO"].count("/") > 1:
        return str(environ["PATH_INFO"])
    if method == "POST" and "uploadId" in query:
        return str(environ["PATH_INFO"])
    return None


class FaultyS3:
    """moto on 127.0.0.1:`port`; `versions` holds the versions each create write made per path
    (`/bucket/key`), `done` counts what the faults did; `restart(seconds)` takes it down that long."""

    def __init__(self, faults: Faults | None = None, seed: int | None = None) -> None:
        self.faults = faults or Faults()
        self.port = _free_port()
        self.versions: dict[str, set[str]] = {}
        self.done: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._moto = DomainDispatcherApplication(create_backend_app)
        # moto checks If-None-Match and then writes, unlocked, where S3 does both atomically.
        self._write_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._down = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="faulty-s3")
        self._thread.start()
        self._down.clear()

    def stop(self) -> None:
        self._down.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)

    def restart(self, down_for: float) -> None:
        """Down (connections refused, requests in flight cut) for `down_for` seconds, then up again."""
        self.stop()
        self._count("restarts")
        time.sleep(down_for)
        self.start()

    def __enter__(self) -> FaultyS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def make_bucket(self, name: str) -> None:
        """A versioned bucket: every replacement of an object would leave a version behind."""
        s3 = client(self.endpoint)
        with contextlib.closing(s3):
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

    def written_more_than_once(self) -> list[str]:
        with self._count_lock:
            return sorted(path for path, made in self.versions.items() if len(made) > 1)

    def _count(self, what: str) -> None:
        with self._count_lock:
            self.done[what] += 1

    def _app(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        key = _write_of(environ)
        writing = environ["REQUEST_METHOD"] in ("PUT", "POST")
        with self._count_lock:
            fault = self._fault(environ, writing)
        if fault in _ERRORS:
            return _error(start_response, *_ERRORS[fault])
        if fault == "cut mid-upload":
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0) // 2)
            return _cut(environ, start_response)
        answer: list[tuple[str, list[tuple[str, str]]]] = []

        def recording_start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer.append((code, headers))
            return start_response(code, headers, exc_info)

        with self._write_lock if writing else contextlib.nullcontext():
            body = list(self._moto(environ, recording_start))
        if key is not None and answer and answer[0][0].startswith("2"):
            # A write makes a version (the bucket is versioned); a retried completion S3 (and moto)
            # answers again from the object it made, with that version: no second write.
            version = dict(answer[0][1]).get("x-amz-version-id", "")
            with self._count_lock:
                self.versions.setdefault(key, set()).add(version)
        if self._down.is_set():
            self._count("cut by the restart")
            return _cut(environ, None)
        if fault == "cut after the write":
            return _cut(environ, None)
        return body

    def _fault(self, environ: Environ, writing: bool) -> str | None:
        """Which fault this request meets, if any (counted); under `_count_lock`."""
        faults = self.faults
        roll = faults.roll(environ, self._random)
        if roll is None:
            return None
        chances = [("slow_down", faults.slow_down), ("internal", faults.internal)]
        if writing:
            chances += [("cut mid-upload", faults.cut_mid_upload), ("cut after the write", faults.cut_after_write)]
        for fault, chance in chances:
            if roll < chance:
                faults.spend()
                self.done[fault] += 1
                return fault
            roll -= chance
        return None


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>chaos</RequestId></Error>").encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _cut(environ: Environ, start_response: StartResponse | None) -> list[bytes]:
    """Close the connection with no answer: the client sees it closed before a response."""
    connection: socket.socket = environ["werkzeug.socket"]
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.shutdown(socket.SHUT_RDWR)
    if start_response is not None:
        start_response("500 Internal Server Error", [("Content-Length", "0")])
    return []


__all__ = ["Faults", "FaultyS3"]
