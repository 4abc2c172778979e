"""The one interface every archive store offers, and the key layout all of them share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from workers.failures import TransientError


@dataclass(frozen=True)
class Stored:
    """What landed in storage: the size and sha256 the commit record names."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Keys:
    """Where one recording lives in any store: `<source>/<account>/<sid>.<ext>` and `<sid>.json`
    (an S3 store puts its prefix in front; a local one its directory)."""

    folder: str
    media: str
    record: str

    @classmethod
    def of(cls, source: str, account_sid: str, sid: str, ext: str) -> Keys:
        folder = f"{source}/{account_sid}"
        return cls(folder=folder, media=f"{folder}/{sid}.{ext}", record=f"{folder}/{sid}.json")


def name_of(key: str) -> str:
    """The last part of a key: the file name the commit record uses for its media."""
    return key.rpartition("/")[2]


class AlreadyStored(TransientError):
    """A create-only write found the object in place: another run won. `ours` is what this run
    would have written (None for a record), so the caller can check theirs against it."""

    def __init__(self, key: str, ours: Stored | None = None) -> None:
        super().__init__(f"{name_of(key)} appeared in storage while it was being written")
        self.ours = ours


class Store(Protocol):
    """Create-only writes (an object in place is never replaced), reads, and a probe for `check`.
    Failures raise PermanentError (credentials, a missing bucket, a denied write: no retry helps)
    or TransientError (the store unreachable or busy), each with a one-line reason."""

    def where(self, key: str) -> str:
        """The object as an operator finds it: a path, or s3://bucket/key."""
        ...

    def put_media(self, key: str, chunks: Iterable[bytes]) -> Stored:
        """Stream `chunks` in with constant memory; checked by size and sha256 once written.
        An exception from `chunks` abandons the write and leaves no visible object."""
        ...

    def put_record(self, key: str, data: bytes) -> None: ...

    def read_record(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def digest(self, key: str) -> Stored | None:
        """Size and sha256 of the stored object, read back; None when there is none."""
        ...

    def forget_partials(self, record_key: str) -> int:
        """Remove what earlier attempts at this recording left half-written; how many."""
        ...

    def sweep(self, older_than_seconds: float) -> int:
        """Remove half-written leftovers of any recording older than any job may run."""
        ...

    def probe(self) -> str:
        """Write and delete a probe object; a line saying where storage is, or an error."""
        ...

    def close(self) -> None: ...
