"""Runs the child processes of `up` and `worker --processes N`: restarts any that die, stops all together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from receiver.kernel import log_output, logs
from workers.commands.stderr_relay import StderrRelay

log = logs.get("workers.commands.supervisor")

Starter = Callable[[], "subprocess.Popen[bytes]"]

# A child that keeps dying is restarted after a growing pause, up to this long.
MAX_BACKOFF_SECONDS = 30.0
# A child that exits with an error this soon after it started never got going (a configuration
# error, a port in use), which no restart mends; this many in a row stop everything instead of
# restarting it forever while the banner claims all is well.
START_WINDOW_SECONDS = 10.0
START_FAILURES_TO_GIVE_UP = 3


@dataclass
class Child:
    name: str
    start: Starter
    proc: subprocess.Popen[bytes]
    relay: StderrRelay | None
    started: float
    restarts: int = 0
    next_start: float = 0.0
    start_failures: int = 0

    def launch(self) -> None:
        self.proc, self.relay = _launch(self.name, self.start)
        self.started = time.monotonic()

    @property
    def gave_up(self) -> bool:
        return self.start_failures >= START_FAILURES_TO_GIVE_UP


def _launch(name: str, start: Starter) -> tuple[subprocess.Popen[bytes], StderrRelay | None]:
    proc = start()
    log.info("child started", child=name, child_pid=proc.pid)
    # A child started by someone else (the embedded Redis) may keep its stderr; it logs to a file.
    return proc, StderrRelay(name, proc.stderr, proc.pid) if proc.stderr is not None else None


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def __post_init__(self) -> None:
        if logs.json_lines() is False:
            # On a terminal the children's lines carry their names; ours carry our role alike.
            log_output.set_prefix(f"{logs.role():<9}| ")

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        env = _same_log_format(env)

        def start() -> subprocess.Popen[bytes]:
            # Own session: Ctrl-C reaches only us, and we stop children deliberately. Stderr comes
            # through us so that a child that fails to start can be reported with its last error.
            return subprocess.Popen(
                [sys.executable, "-m", "workers.commands.cli", *args], env=env, stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True,
            )

        self.adopt(name, start)

    def adopt(self, name: str, start: Starter) -> None:
        proc, relay = _launch(name, start)
        self.children.append(Child(name, start, proc, relay, time.monotonic()))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            # A second Ctrl-C: stop waiting for running jobs; RQ retries whatever was cut short.
            for child in self.children:
                if child.proc.poll() is None:
                    child.proc.kill()
        self.stopping = True

    def wait(self) -> int:
        """Block until SIGINT/SIGTERM, restarting children that die meanwhile; then stop all.
        Returns 1 when a child kept failing at start (and says which, with its last error), else 0."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        # A closed terminal: stop everything as Ctrl-C would, rather than die and orphan the children.
        signal.signal(signal.SIGHUP, self._on_signal)
        failed: Child | None = None
        while not self.stopping and failed is None:
            for child in self.children:
                self._revive(child)
            failed = next((child for child in self.children if child.gave_up), None)
            if failed is None:
                time.sleep(0.2)
        self.stop()
        if failed is None:
            return 0
        # Last, after the others' shutdown lines, so that it is what the user reads.
        print(_failure_report(failed), file=sys.stderr, flush=True)
        return 1

    def _revive(self, child: Child) -> None:
        if child.proc.poll() is None:
            return
        now = time.monotonic()
        if child.next_start == 0.0:
            self._note_exit(child, now)
        elif now >= child.next_start:
            child.launch()
            child.restarts += 1
            child.next_start = 0.0

    def _note_exit(self, child: Child, now: float) -> None:
        failed_at_start = child.proc.returncode != 0 and now - child.started < START_WINDOW_SECONDS
        # A child that ran past the window and then died is restarted as ever, and starts a new count.
        child.start_failures = child.start_failures + 1 if failed_at_start else 0
        if now - child.started >= MAX_BACKOFF_SECONDS:
            child.restarts = 0  # a child that ran a good while gets a quick restart again
        if child.gave_up:
            return
        delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**child.restarts)
        child.next_start = now + delay
        log.warning("child exited; restarting", child=child.name, code=child.proc.returncode,
                    restart_in_seconds=round(delay, 1))

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM to every child at once (workers finish their jobs, the receiver drains), then
        Redis last so they can still write; SIGKILL whatever outlives the grace period."""
        log.info("stopping children", children=[c.name for c in self.children])
        redis = [c.proc for c in self.children if c.name == "redis"]
        others = [c.proc for c in self.children if c.name != "redis"]
        for group in (others, redis):
            for proc in group:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            for proc in group:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for child in self.children:
            if child.relay is not None:
                # Daemon threads die with us: let the children's last lines through first.
                child.relay.join(timeout=2.0)
        log.info("children stopped")


def _failure_report(child: Child) -> str:
    last = (child.relay.last_line() if child.relay else None) or "(it wrote nothing to stderr)"
    return (
        f"recording-receiver: {child.name} exited with code {child.proc.returncode} within "
        f"{START_WINDOW_SECONDS:.0f}s of starting, {child.start_failures} times in a row; stopped everything. "
        f"Its last error: {last}"
    )


def _same_log_format(env: dict[str, str]) -> dict[str, str]:
    """LOG_FORMAT=auto picks by whether stderr is a terminal; a child's stderr is now our pipe, so
    a child of ours on a terminal is told so, and keeps writing the readable lines it wrote before."""
    if sys.stderr.isatty() and env.get("LOG_FORMAT", "").strip().lower() in ("", "auto"):
        return dict(env, LOG_FORMAT="console")
    return env
