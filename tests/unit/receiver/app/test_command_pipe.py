"""The receiver's pipelined Redis connection: replies in order, error replies, a dead or silent line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvloop
from redis import Redis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from receiver.app.redis_pipe.command_pipe import CommandPipe
from receiver.kernel.redis_client import async_redis
from tests.support.servers import RedisProcess
from workers.commands.settings import Settings

# The receiver runs on uvloop; both loops' transports must let the pipe take over their protocol.
LOOPS = pytest.mark.parametrize("run_loop", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
# Only turns a call that never ends into a failure: no test passes or fails by how long a call took.
HANG_SECONDS = 60.0


@contextlib.contextmanager
def _closing(writer: asyncio.StreamWriter) -> Iterator[None]:
    """A fake server's side of a connection, closed however its handler ends (a transport left
    open warns at the loop's close: a ResourceWarning, and uvloop fails its close on it)."""
    try:
        yield
    finally:
        writer.close()


async def _pipe(url: str, timeout: float = 10.0) -> tuple[Any, CommandPipe]:
    client = async_redis(Settings(redis_url=url))
    return client, CommandPipe(client.connection_pool, timeout)


async def _outcome(call: asyncio.Future[list[Any]]) -> BaseException | list[Any]:
    """The call's replies or its exception, once it has ended by itself."""
    done, _ = await asyncio.wait([call], timeout=HANG_SECONDS)
    assert done, f"the call had not ended after {HANG_SECONDS} s"
    return call.exception() or call.result()


@LOOPS
def test_calls_written_together_get_their_own_replies_in_order(redis_url: str, redis: Redis, run_loop: Any) -> None:
    async def run() -> list[Any]:
        client, pipe = await _pipe(redis_url)
        try:
            calls = [pipe.send(("INCR", "pipe:n"), ("GET", "pipe:n")) for _ in range(50)]
            calls.append(pipe.send(("EVALSHA", "0" * 40, 0)))  # an error reply, mid-stream
            calls += [pipe.send(("INCR", "pipe:n")) for _ in range(3)]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await pipe.aclose()
            await client.aclose()

    redis.delete("pipe:n")
    replies = run_loop(run())
    assert replies[:50] == [[n, str(n).encode()] for n in range(1, 51)]
    # redis-py's error classes, so the enqueuer can tell a forgotten script from other errors.
    assert isinstance(replies[50], NoScriptError)
    # An error reply fails its call only: the line goes on.
    assert replies[51:] == [[51], [52], [53]]


@LOOPS
def test_a_killed_connection_fails_what_is_in_flight_and_the_next_call_connects_again(
    redis_url: str, redis: Redis, run_loop: Any
) -> None:
    async def run() -> tuple[BaseException | list[Any], list[Any]]:
        client, pipe = await _pipe(redis_url)
        try:
            await pipe.send(("CLIENT", "SETNAME", "pipe-under-test"))
            # BLPOP with no timeout holds the line until something ends it: here, the kill.
            blocked = pipe.send(("BLPOP", "pipe:never", 0))
            killed = await asyncio.to_thread(_kill_named, redis, "pipe-under-test")
            assert killed == 1
            return await _outcome(blocked), await pipe.send(("PING",))
        finally:
            await pipe.aclose()
            await client.aclose()

    lost, after = run_loop(run())
    assert isinstance(lost, ConnectionError)
    assert after == [b"PONG"]


def _kill_named(redis: Redis, name: str) -> int:
    ids = [c["id"] for c in redis.client_list() if c.get("name") == name]
    for client_id in ids:
        redis.client_kill_filter(_id=client_id)
    return len(ids)


def test_a_line_that_stops_answering_is_dropped_after_its_timeout(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")

    async def run() -> tuple[BaseException | list[Any], float]:
        client, pipe = await _pipe(server.url, timeout=0.5)
        try:
            assert await pipe.send(("PING",)) == [b"PONG"]
            os.kill(server.proc.pid, signal.SIGSTOP)
            started = time.monotonic()
            # A stopped Redis never answers: only the pipe's own watchdog can end this call.
            outcome = await _outcome(pipe.send(("PING",)))
            return outcome, time.monotonic() - started
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
            await pipe.aclose()
            await client.aclose()

    try:
        outcome, waited = asyncio.run(run())
    finally:
        server.stop()
    assert isinstance(outcome, ConnectionError) and "TimeoutError" in str(outcome)
    # Not before its timeout: the watchdog gives a line one whole period (minus the clock's
    # granularity) to answer. Only a lower bound; however slow the machine, it cannot fail.
    assert waited >= 0.4


def test_a_reply_that_is_not_redis_protocol_breaks_the_line() -> None:
    """A real Redis never sends this; a TCP server that speaks a sliver of the protocol does."""
    async def run() -> BaseException | list[Any]:
        async def fake_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Answers redis-py's connection handshake (CLIENT SETINFO), then talks nonsense.
            with _closing(writer):
                while line := await reader.readline():
                    if line.startswith(b"*"):
                        parts = [await reader.readline() for _ in range(2 * int(line[1:]))]
                        writer.write(b"?what\r\n" if parts[1].upper() == b"PING\r\n" else b"+OK\r\n")

        server = await asyncio.start_server(fake_redis, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client, pipe = await _pipe(f"redis://127.0.0.1:{port}")
        try:
            return await _outcome(pipe.send(("PING",)))
        finally:
            await pipe.aclose()
            await client.aclose()
            server.close()

    assert isinstance(asyncio.run(run()), ConnectionError)


def test_the_pipe_speaks_resp2_whatever_the_client_defaults_to(redis_url: str) -> None:
    """Replies are matched to calls by count: a protocol with out-of-band frames must not be on."""
    async def run() -> list[Any]:
        client = async_redis(Settings(redis_url=redis_url), protocol=3)
        pipe = CommandPipe(client.connection_pool, 10.0)
        try:
            return await pipe.send(("CLIENT", "INFO"))
        finally:
            await pipe.aclose()
            await client.aclose()

    [info] = asyncio.run(run())
    assert b" resp=2 " in info


@LOOPS
def test_push_frames_settle_no_call(run_loop: Any) -> None:
    """A server may push frames nobody asked for (RESP3 invalidations, maintenance notices):
    each call still gets its own reply."""
    push = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n"

    async def run() -> list[Any]:
        async def pushy_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Answers the handshake with +OK, and ECHO with a push frame before and after its reply.
            with _closing(writer):
                while line := await reader.readline():
                    if line.startswith(b"*"):
                        parts = [await reader.readline() for _ in range(2 * int(line[1:]))]
                        if parts[1].upper() == b"ECHO\r\n":
                            writer.write(push + b"$" + parts[2][1:] + parts[3] + push)
                        else:
                            writer.write(b"+OK\r\n")

        server = await asyncio.start_server(pushy_redis, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client, pipe = await _pipe(f"redis://127.0.0.1:{port}")
        try:
            calls = [pipe.send(("ECHO", f"call-{n}")) for n in range(20)]
            calls.append(pipe.send(("ECHO", "a"), ("ECHO", "b")))
            return await asyncio.gather(*(_outcome(call) for call in calls))
        finally:
            await pipe.aclose()
            await client.aclose()
            server.close()

    assert run_loop(run()) == [[f"call-{n}".encode()] for n in range(20)] + [[b"a", b"b"]]


def test_error_reply_keeps_its_message(redis_url: str) -> None:
    async def run() -> BaseException | list[Any]:
        client, pipe = await _pipe(redis_url)
        try:
            return await pipe.send(("SET", "pipe:x"))
        except ResponseError as exc:
            return exc
        finally:
            await pipe.aclose()
            await client.aclose()

    failure = asyncio.run(run())
    assert isinstance(failure, ResponseError) and "wrong number of arguments" in str(failure)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@LOOPS
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a certificate")
def test_calls_go_through_over_tls(redis_url: str, redis: Redis, tmp_path: Path, run_loop: Any) -> None:
    """rediss://: the pipe takes over the protocol of a TLS transport as of a plain one. The
    embedded redis-server is built without TLS, so a TLS-terminating relay stands in front."""
    cert, key = _self_signed(tmp_path)
    port = int(redis_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])

    async def relay(tls_in: asyncio.StreamReader, tls_out: asyncio.StreamWriter) -> None:
        plain_in, plain_out = await asyncio.open_connection("127.0.0.1", port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
            sink.close()

        await asyncio.gather(pump(tls_in, plain_out), pump(plain_in, tls_out), return_exceptions=True)

    async def run() -> list[Any]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
        tls_port = server.sockets[0].getsockname()[1]
        auth = f":{password}@" if (password := urlsplit(redis_url).password) else ""
        client, pipe = await _pipe(f"rediss://{auth}127.0.0.1:{tls_port}?ssl_ca_certs={cert}")
        try:
            return await asyncio.gather(*(pipe.send(("INCR", "pipe:tls")) for _ in range(40)))
        finally:
            await pipe.aclose()
            await client.aclose()
            server.close()

    redis.delete("pipe:tls")
    assert run_loop(run()) == [[n] for n in range(1, 41)]


def test_a_server_that_never_answers_the_handshake_fails_the_call_and_aclose_ends_a_connect() -> None:
    """A peer that accepts and then says nothing (a stopped or partitioned Redis) must not hold
    the connect, and every call queued behind it, for good; shutting down ends a connect too."""

    async def run() -> tuple[BaseException | list[Any], bool]:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with _closing(writer):
                await reader.read()  # until the client goes away

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client, pipe = await _pipe(f"redis://127.0.0.1:{port}", timeout=0.5)
        try:
            # The peer never answers: only the pipe's bound on the connect can end this call.
            outcome = await _outcome(pipe.send(("PING",)))
            pending = pipe.send(("PING",))
            await pipe.aclose()
            return outcome, pending.done()
        finally:
            await pipe.aclose()
            await client.aclose()
            server.close()

    outcome, ended = asyncio.run(run())
    assert isinstance(outcome, (TimeoutError, ConnectionError)), outcome
    assert ended
