"""The local-directory store: temp file, fsync, then a create-only link into place."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from workers.storage import sweep
from workers.storage.seam import AlreadyStored, Stored

# Filesystems without hard links (some network and FUSE mounts) answer one of these to link().
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def digest(path: Path) -> Stored:
    with path.open("rb") as handle:
        sha = hashlib.file_digest(handle, "sha256")
        return Stored(size=os.fstat(handle.fileno()).st_size, sha256=sha.hexdigest())


# Temp files live in a folder of their own beside the archives: finding a recording's leftovers
# then reads only the writes in flight, not a folder that grows by two files per recording.
PARTS = ".parts"


def _temp_beside(path: Path) -> tuple[int, Path]:
    parts = path.parent / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parts)
    return fd, Path(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _link_into_place(temp: Path, final: Path, ours: Stored | None) -> None:
    """Create-only: a file already in place is never replaced, so a retry or a second worker
    can never overwrite a good archive (rename would)."""
    try:
        os.link(temp, final)
    except FileExistsError:
        raise AlreadyStored(final.name, ours) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if final.exists():
            raise AlreadyStored(final.name, ours) from None
        temp.replace(final)


def _commit(fd: int, temp: Path, final: Path, ours: Stored | None = None) -> None:
    os.fsync(fd)
    _link_into_place(temp, final, ours)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _close(fd: int, temp: Path) -> None:
    """Always, committed or not: once linked into place the temp name is only a second name."""
    os.close(fd)
    temp.unlink(missing_ok=True)


class LocalStore:
    """Keys are paths under `root`: byte for byte the files and names archives always had."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, key: str) -> str:
        return str(self.root / key)

    def path_of(self, key: str) -> Path:
        """The file a key names, for serving it back; ValueError for a key that would leave the root
        (keys come from validated sids, so only a bug gets here)."""
        root = self.root.resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or path == root:
            raise ValueError("key outside the archive directory")
        return path

    def put_media(self, key: str, chunks: Iterable[bytes]) -> Stored:
        dest = self.root / key
        fd, temp = _temp_beside(dest)
        try:
            sha = hashlib.sha256()
            size = 0
            for chunk in chunks:
                _write_all(fd, chunk)
                sha.update(chunk)
                size += len(chunk)
            stored = Stored(size, sha.hexdigest())
            _commit(fd, temp, dest, stored)
            return stored
        finally:
            _close(fd, temp)

    def put_record(self, key: str, data: bytes) -> None:
        """Create-only, like the media: the record is what "archived" means."""
        dest = self.root / key
        fd, temp = _temp_beside(dest)
        try:
            _write_all(fd, data)
            _commit(fd, temp, dest)
        finally:
            _close(fd, temp)

    def read_record(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def digest(self, key: str) -> Stored | None:
        try:
            return digest(self.root / key)
        except FileNotFoundError:
            return None

    def forget_partials(self, record_key: str) -> int:
        """Every temp file an earlier attempt at this recording left (a worker killed mid-write)."""
        record = self.root / record_key
        removed = 0
        for leftover in (record.parent / PARTS).glob(f".{record.stem}.*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def sweep(self, older_than_seconds: float) -> int:
        return sweep.sweep(self.root, older_than_seconds)

    def probe(self) -> str:
        return f"storage    {self.root}"

    def close(self) -> None:
        """Nothing held open between calls."""
