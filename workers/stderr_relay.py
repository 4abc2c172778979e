"""Passes a child process's stderr through to ours unchanged, remembering its last lines for a report."""

from __future__ import annotations

import collections
import sys
import threading
from typing import IO

# Children write at once; whole lines keep one child's line from being cut by another's.
_WRITE_LOCK = threading.Lock()


class StderrRelay:
    """A reader thread on one child's stderr pipe; it ends when the child (and the pipe) does."""

    def __init__(self, name: str, source: IO[bytes], keep: int = 5) -> None:
        self._source = source
        self._tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._run, name=f"stderr-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._source:
            for line in self._source:
                _write_through(line)
                if line.strip():
                    self._tail.append(line.decode(errors="replace").rstrip())

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def last_line(self, timeout: float = 2.0) -> str | None:
        """The last non-empty line the child wrote, once the pipe is read to its end (or `timeout`
        passes: a grandchild holding the pipe open must not hold up the report)."""
        self.join(timeout)
        return self._tail[-1] if self._tail else None


def _write_through(line: bytes) -> None:
    stream = sys.stderr
    binary: IO[bytes] | None = getattr(stream, "buffer", None)
    try:
        with _WRITE_LOCK:
            if binary is not None:
                binary.write(line)
                binary.flush()
            else:  # a text-only stand-in for stderr (a test's capture)
                stream.write(line.decode(errors="replace"))
                stream.flush()
    except (OSError, ValueError):
        # Our stderr is gone (closed terminal, broken pipe): keep draining the child's pipe
        # regardless, or the child would block on a full pipe.
        pass
