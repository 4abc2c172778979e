"""Writes a process's log lines to stderr whole and one at a time, whoever writes them."""

from __future__ import annotations

import sys
import threading
from typing import Any

# One lock for structlog's lines, the stdlib's (uvicorn, RQ, warnings) and `up`'s relays of its
# children: each takes it for a whole line, so two lines never glue together.
_LOCK = threading.Lock()
_prefix = ""


def set_prefix(prefix: str) -> None:
    """Put before each of this process's own lines (`up` on a terminal, beside its children's names)."""
    global _prefix
    _prefix = prefix


def write_line(text: str) -> None:
    stream = sys.stderr  # looked up each time: a test may have swapped it
    try:
        with _LOCK:
            stream.write(_prefix + text + "\n" if _prefix else text + "\n")
            stream.flush()
    except (OSError, ValueError):
        pass  # stderr is gone (closed terminal, broken pipe): a log line must not kill the process


def write_raw(line: bytes) -> None:
    """A line relayed from a child, as the bytes it wrote (the newline included)."""
    stream = sys.stderr
    binary: Any = getattr(stream, "buffer", None)
    try:
        with _LOCK:
            if binary is not None:
                stream.flush()
                binary.write(line)
                binary.flush()
            else:  # a text-only stand-in for stderr (a test's capture)
                stream.write(line.decode(errors="replace"))
                stream.flush()
    except (OSError, ValueError):
        pass


class LineLogger:
    """structlog's logger: every method writes the rendered line through the shared lock."""

    def __init__(self, name: str = "") -> None:
        self.name = name  # the `logger` field of its lines

    def msg(self, message: str) -> None:
        write_line(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def line_logger(*args: Any) -> LineLogger:
    """structlog's logger factory: `structlog.get_logger(name)` passes the name."""
    return LineLogger(str(args[0]) if args else "")
