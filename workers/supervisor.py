"""Runs a set of child processes for `up` and `worker`, and stops all of them together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType


@dataclass
class Supervisor:
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Own process group: Ctrl-C reaches us once and we stop children in order, not all at once.
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *args], env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.children.append((name, proc))
        return proc

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.children.append((name, proc))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            # A second Ctrl-C: stop waiting for running jobs; RQ retries whatever was cut short.
            for _, proc in self.children:
                if proc.poll() is None:
                    proc.kill()
        self.stopping = True

    def wait(self) -> int:
        """Block until a signal or a child's death, then stop everyone; returns an exit code."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        code = 0
        while not self.stopping:
            for name, proc in self.children:
                if proc.poll() is not None:
                    print(f"recording-receiver: {name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                    self.stopping, code = True, 1
                    break
            time.sleep(0.2)
        self.stop()
        return code

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM to every child at once (workers finish their jobs, the receiver drains), then
        Redis last so they can still write; SIGKILL whatever outlives the grace period."""
        redis = [proc for name, proc in self.children if name == "redis"]
        others = [proc for name, proc in self.children if name != "redis"]
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
