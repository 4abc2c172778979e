"""Pieces the benchmarks share: processes on free loopback ports, wrk runs, CPU and memory sampling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.support.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]

# What `recording-receiver serve` runs, for every case: no access log, and no proxy-headers
# middleware (the receiver reads X-Forwarded-* itself, only under TRUST_PROXY_HEADERS).
UVICORN = [
    "--no-access-log", "--no-proxy-headers", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    "--workers", "1",
]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str


def start_uvicorn(target: str, env: dict[str, str], factory: bool = False, cpus: set[int] | None = None,
                  timeout: float = 20.0) -> Server:
    """One uvicorn process with the same settings for every case, on `cpus` when given; killed
    when it does not answer within `timeout`."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), *UVICORN]
    if factory:
        args.append("--factory")
    pinned = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=pinned,  # noqa: PLW1509 -- pins the server to its cores; it only calls sched_setaffinity
    )
    base = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            httpx.get(base + "/", timeout=0.5)
            return True
        except httpx.HTTPError:
            return proc.poll() is not None

    try:
        wait_for(answering, timeout=timeout, what=f"uvicorn {target}")
    except AssertionError:
        proc.kill()
        proc.wait()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"uvicorn {target} exited with {proc.returncode}")
    return Server(proc, base)


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(the server's CPUs, everyone else's): the server alone on the last core, so the load
    generator and Redis do not take turns with it; None on a one-core machine."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def stop(server: Server) -> None:
    end(server.proc)


def end(proc: subprocess.Popen[bytes] | psutil.Popen, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `grace`: a worker whose Redis is already gone never exits."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    # psutil.Popen's wait raises its own TimeoutExpired, which is not subprocess's.
    except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
        proc.kill()
        proc.wait()


@dataclass
class Sampler:
    """Samples one process's CPU time and peak RSS while a load runs."""

    pid: int
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._proc = psutil.Process(self.pid)
        self._cpu0 = sum(self._proc.cpu_times()[:2])
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_rss = max(self.peak_rss, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = sum(self._proc.cpu_times()[:2]) - self._cpu0
        self.peak_rss = max(self.peak_rss, self._proc.memory_info().rss)


@dataclass
class WrkResult:
    requests: int
    non_2xx: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    seconds: float  # how long wrk sent requests, its start-up not included


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(text: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def run_wrk(base_url: str, bodies: Path, seconds: int, connections: int = 64, threads: int = 2) -> WrkResult:
    script = Path(__file__).with_name("bench.lua")
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base_url, "--", str(bodies), str(threads)],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout
    sent = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    assert sent is not None, out
    requests, seconds = int(sent.group(1)), float(sent.group(2)) / (1000 if sent.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests=requests,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_latency(out, "50"),
        p99_ms=_latency(out, "99"),
        seconds=seconds,
    )
