"""Runs the child processes of `up` and `worker --processes N`: restarts any that die, stops all together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Callable

Starter = Callable[[], "subprocess.Popen[bytes]"]

# A child that keeps dying is restarted after a growing pause, up to this long.
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class Child:
    name: str
    start: Starter
    proc: subprocess.Popen[bytes]
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        def start() -> subprocess.Popen[bytes]:
            # Own session: Ctrl-C reaches only us, and we stop children deliberately.
            return subprocess.Popen(
                [sys.executable, "-m", "workers.cli", *args], env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )

        self.adopt(name, start)

    def adopt(self, name: str, start: Starter) -> None:
        self.children.append(Child(name, start, start()))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            # A second Ctrl-C: stop waiting for running jobs; RQ retries whatever was cut short.
            for child in self.children:
                if child.proc.poll() is None:
                    child.proc.kill()
        self.stopping = True

    def wait(self) -> int:
        """Block until SIGINT/SIGTERM, restarting children that die meanwhile; then stop all."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        while not self.stopping:
            for child in self.children:
                self._revive(child)
            time.sleep(0.2)
        self.stop()
        return 0

    def _revive(self, child: Child) -> None:
        if child.proc.poll() is None:
            return
        now = time.monotonic()
        if child.next_start == 0.0:
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**child.restarts)
            child.next_start = now + delay
            print(f"recording-receiver: {child.name} exited with code {child.proc.returncode}; restarting in {delay:.1f}s",
                  file=sys.stderr, flush=True)
        elif now >= child.next_start:
            child.proc = child.start()
            child.restarts += 1
            child.next_start = 0.0

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM to every child at once (workers finish their jobs, the receiver drains), then
        Redis last so they can still write; SIGKILL whatever outlives the grace period."""
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
