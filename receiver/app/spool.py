"""A durable local spool (SQLite in WAL mode) for events Redis could not take in time."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
)
"""


class Spool:
    """Several receiver processes on one host may share the file: SQLite serialises the writers.

    `synchronous=FULL` makes every committed event survive a power cut, which is the point: the
    receiver has already answered Twilio when it writes here.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def put(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events (payload, received_at) VALUES (?, ?)", (json.dumps(payload), time.time())
            )

    def oldest(self, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT id, payload FROM events ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
