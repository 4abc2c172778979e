"""Counts every write of a final archive file in one storage folder, as the filesystem saw it (inotify)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from inotify_simple import INotify, flags

# A file put in place by link() shows as CREATE, by rename() as MOVED_TO; either is one write.
_WRITES = flags.CREATE | flags.MOVED_TO


class FileWrites(threading.Thread):
    """Watches `folder` until stopped; `writes` maps each final file name to its writes."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True, name="file-writes")
        folder.mkdir(parents=True, exist_ok=True)
        self._inotify = INotify()
        self._inotify.add_watch(str(folder), _WRITES)
        self._stopped = threading.Event()
        self.writes: Counter[str] = Counter()
        self.overflowed = False

    def run(self) -> None:
        while not self._stopped.is_set():
            for event in self._inotify.read(timeout=200):
                if event.mask & flags.Q_OVERFLOW:
                    self.overflowed = True  # events were lost: the counts are a lower bound
                elif event.name and not event.name.startswith("."):  # temp files start with "."
                    self.writes[event.name] += 1

    def stop(self) -> None:
        self._stopped.set()
        self.join()
        self._inotify.close()

    def written_more_than_once(self) -> list[str]:
        return sorted(name for name, count in self.writes.items() if count > 1)
