"""What forged requests cost the receiver: CPU ms per request by shape, and how long a stalled body holds a connection.

    python -m tests.perf.forged_cost [--requests 200] [--slow-wait 60]

Each shape is K forged (wrongly signed) callbacks sent one after another over one connection to
a receiver in its own process; its CPU time (user + system, psutil) is read before and after, so
the figure is the receiver's own cost per request, the client's not included. The shapes are the
largest bodies the receiver accepts to read, with as many fields as it accepts, plus the attack
from issue 14 (51 KB, 6,500 fields). Then one client sends headers with a Content-Length and no
body: the seconds until the receiver closes that connection (or --slow-wait, if it never does).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from tests.perf.harness import Server, start_uvicorn, stop
from tests.support.servers import RedisProcess
from tests.support.twilio_signing import sign
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params

ACCOUNT, TOKEN, SECONDARY, PUBLIC = "AC" + "4" * 32, "forged-token", "forged-token-2", "https://hooks.example.com"
ROUTE = "/twilio/recordings/voice"


def _fields(size: int, count: int, unit: str = "v") -> bytes:
    """A real callback's fields padded to `count` fields and about `size` bytes, values made of `unit`."""
    base = httpx.QueryParams(voice_params(ACCOUNT, "completed", new_sid("RE"))).__str__()
    extra = max(count - base.count("&") - 1, 1)
    per_field = max((size - len(base)) // extra - len(f"&F{extra}="), len(unit))
    pad = "&".join(f"F{i}={unit * (per_field // len(unit))}" for i in range(extra))
    return f"{base}&{pad}".encode()[:size]


SHAPES: dict[str, Callable[[Settings], bytes]] = {
    "max size, max fields": lambda s: _fields(s.max_body_bytes, _max_fields(s)),
    "max size, escapes": lambda s: _fields(s.max_body_bytes, _max_fields(s), "%41"),
    "max size, 3,000 fields": lambda s: _fields(s.max_body_bytes, 3000),
    "4 KB, 60 fields (diagnosable)": lambda s: _fields(4000, 60),
    "issue 14: 51 KB, 6,500 fields": lambda s: _fields(51_000, 6_500),
}


def _max_fields(settings: Settings) -> int:
    # Before MAX_FORM_FIELDS existed the only bound was the body size: as many as fit.
    return int(getattr(settings, "max_form_fields", settings.max_body_bytes // 8))


def cpu_ms_per_request(server: Server, body: bytes, count: int) -> tuple[float, dict[int, int]]:
    proc = psutil.Process(server.proc.pid)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign("wrong", PUBLIC + ROUTE, [])}
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        client.post(ROUTE, content=body, headers=headers)  # warm: imports, first log line, Redis
        before = sum(proc.cpu_times()[:2])
        for _ in range(count):
            status = client.post(ROUTE, content=body, headers=headers).status_code
            statuses[status] = statuses.get(status, 0) + 1
        spent = sum(proc.cpu_times()[:2]) - before
    return spent * 1000 / count, statuses


def stalled_body_seconds(server: Server, wait: float) -> tuple[float, bytes]:
    """Headers promising 100 bytes, then nothing: seconds until the receiver closes, and its answer."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {ROUTE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 100\r\nX-Twilio-Signature: x\r\n\r\n".encode()
        )
        sock.settimeout(wait)
        started = time.monotonic()
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except TimeoutError:
            return wait, answer
        return time.monotonic() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--slow-wait", type=float, default=60.0)
    parser.add_argument("--diagnoses-per-second", help="SIGNATURE_DIAGNOSES_PER_SECOND (e.g. 1e6: diagnose every request)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc = RedisProcess(Path(tmp) / "redis")
        env = {"REDIS_URL": redis_proc.url, "PUBLIC_BASE_URL": PUBLIC, "TWILIO_ACCOUNT_SID": ACCOUNT,
               "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_AUTH_TOKEN_SECONDARY": SECONDARY,
               "DATA_DIR": str(Path(tmp) / "data"), "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
        if args.diagnoses_per_second:
            env["SIGNATURE_DIAGNOSES_PER_SECOND"] = args.diagnoses_per_second
        settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
        server = start_uvicorn("receiver.app.factory:create_app", env, factory=True)
        try:
            for name, shape in SHAPES.items():
                body = shape(settings)
                ms, statuses = cpu_ms_per_request(server, body, args.requests)
                fields = body.count(b"&") + 1
                answers = ", ".join(f"{code}×{n}" for code, n in sorted(statuses.items()))
                print(f"{name:32} {len(body):6} B {fields:5} fields  {ms:7.2f} CPU ms/request  ({answers})")
            held, answer = stalled_body_seconds(server, args.slow_wait)
            first = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer"
            print(f"stalled body: connection held {held:.1f} s ({first})")
        finally:
            stop(server)
            redis_proc.stop()


if __name__ == "__main__":
    main()
