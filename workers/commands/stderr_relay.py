"""Relays a child process's stderr to ours line by line, in our log format, remembering its last lines for a report."""

from __future__ import annotations

import collections
import json
import threading
from datetime import UTC, datetime
from typing import IO

from receiver.kernel import log_output, logs


class StderrRelay:
    """A reader thread on one child's stderr pipe; it ends when the child (and the pipe) does.

    With JSON logs a child's JSON lines pass unchanged and anything else it writes (a crash before
    its logging was set up) becomes one JSON line in its name; on a terminal each line is prefixed
    with the child's name; before logging is configured (a test's supervisor) lines pass unchanged.
    """

    def __init__(self, name: str, source: IO[bytes], pid: int | None = None, keep: int = 5,
                 json_lines: bool | None = None) -> None:
        self._name = name
        self._pid = pid
        self._source = source
        self._json = logs.json_lines() if json_lines is None else json_lines
        self._tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._run, name=f"stderr-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._source:
            for line in self._source:
                text = line.decode(errors="replace").rstrip("\r\n")
                self._relay(line, text)
                if text.strip():
                    self._tail.append(_readable(text))

    def _relay(self, line: bytes, text: str) -> None:
        # A child killed mid-line leaves its last line unended: ended here, the next one stays apart.
        whole = line if line.endswith(b"\n") else line + b"\n"
        if self._json is None:
            log_output.write_raw(whole)
        elif self._json:
            log_output.write_raw(whole if _is_json_object(text) else self._wrapped(text))
        else:
            log_output.write_raw(f"{self._name:<9}| {text}\n".encode())

    def _wrapped(self, text: str) -> bytes:
        entry = {
            "event": text, "level": "error", "logger": "stderr", "role": role_of(self._name), "pid": self._pid,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        return (json.dumps(entry) + "\n").encode()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def last_line(self, timeout: float = 2.0) -> str | None:
        """The last non-empty line the child wrote, once the pipe is read to its end (or `timeout`
        passes: a grandchild holding the pipe open must not hold up the report)."""
        self.join(timeout)
        return self._tail[-1] if self._tail else None


def role_of(name: str) -> str:
    """`worker-1` → `worker`: the role a child's own lines carry."""
    base, _, index = name.rpartition("-")
    return base if base and index.isdigit() else name


def _is_json_object(text: str) -> bool:
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _readable(text: str) -> str:
    """A JSON line as a person reads it in a report: its event, and its error if it has one."""
    if not _is_json_object(text):
        return text
    entry = json.loads(text)
    event = str(entry.get("event", ""))
    exception = str(entry.get("exception") or "").strip().splitlines()
    return f"{event}: {exception[-1]}" if exception else event
