"""The local-directory store on its own: today's paths and files, create-only writes, nothing half-written left visible."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.commands.settings import Settings
from workers.storage import open_store
from workers.storage.local import PARTS, LocalStore
from workers.storage.seam import AlreadyStored, Keys, Stored

SID = "RE" + "a" * 32
ACCOUNT = "AC" + "b" * 32


def test_keys_are_the_layout_archives_always_had(tmp_path: Path) -> None:
    keys = Keys.of("voice", ACCOUNT, SID, "wav")
    store = LocalStore(tmp_path)
    assert store.where(keys.media) == str(tmp_path / "voice" / ACCOUNT / f"{SID}.wav")
    assert store.where(keys.record) == str(tmp_path / "voice" / ACCOUNT / f"{SID}.json")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "data/recordings"), ({"storage_dir": "/srv/rec"}, "/srv/rec"),
    ({"storage_url": "file:///srv/by%20url"}, "/srv/by url"), ({"storage_url": "/srv/plain", "storage_dir": "/x"}, "/srv/plain"),
])
def test_storage_url_names_a_local_directory_or_falls_back_to_storage_dir(env: dict[str, str], expected: str) -> None:
    store = open_store(Settings(**env))  # type: ignore[arg-type]
    assert isinstance(store, LocalStore) and store.root == Path(expected)


def test_media_is_streamed_in_create_only_and_digested(tmp_path: Path) -> None:
    store, key = LocalStore(tmp_path), Keys.of("voice", ACCOUNT, SID, "wav").media
    stored = store.put_media(key, iter([b"abc", b"def"]))
    assert stored == Stored(6, hashlib.sha256(b"abcdef").hexdigest()) == store.digest(key)
    assert (tmp_path / key).read_bytes() == b"abcdef" and store.exists(key)
    with pytest.raises(AlreadyStored) as taken:
        store.put_media(key, iter([b"other"]))
    assert taken.value.ours == Stored(5, hashlib.sha256(b"other").hexdigest())
    assert (tmp_path / key).read_bytes() == b"abcdef"
    assert sorted(p.name for p in (tmp_path / key).parent.iterdir()) == [PARTS, f"{SID}.wav"]
    assert not list((tmp_path / key).parent.rglob("*.part"))


def test_a_stream_that_fails_leaves_neither_the_file_nor_a_temp(tmp_path: Path) -> None:
    store, key = LocalStore(tmp_path), Keys.of("video", ACCOUNT, SID, "mka").media

    def cut() -> object:
        yield b"half"
        raise OSError("reset")

    with pytest.raises(OSError):
        store.put_media(key, cut())  # type: ignore[arg-type]
    assert not store.exists(key) and list((tmp_path / key).parent.rglob("*")) == [(tmp_path / key).parent / PARTS]
    assert store.digest(key) is None


def test_records_are_create_only_and_read_back(tmp_path: Path) -> None:
    store, key = LocalStore(tmp_path), Keys.of("media", ACCOUNT, SID, "mp4").record
    assert store.read_record(key) is None
    store.put_record(key, b'{"a": 1}\n')
    with pytest.raises(AlreadyStored):
        store.put_record(key, b'{"a": 2}\n')
    assert store.read_record(key) == b'{"a": 1}\n'


def test_forget_partials_removes_only_this_recordings_temps(tmp_path: Path) -> None:
    store, keys = LocalStore(tmp_path), Keys.of("legacy", ACCOUNT, SID, "wav")
    parts = tmp_path / keys.folder / PARTS
    parts.mkdir(parents=True)
    mine = [parts / f".{SID}.wav.k1.part", parts / f".{SID}.json.k2.part"]
    other = parts / f".RE{'c' * 32}.wav.k3.part"
    for path in [*mine, other]:
        path.write_bytes(b"x")
    assert store.forget_partials(keys.record) == 2
    assert [p.name for p in parts.iterdir()] == [other.name]


def test_temp_files_are_written_in_the_parts_folder_not_among_the_archives(tmp_path: Path) -> None:
    """Finding a recording's leftovers then reads only the writes in flight, however many archives
    the folder holds."""
    store, keys = LocalStore(tmp_path), Keys.of("legacy", ACCOUNT, SID, "wav")
    seen: list[list[str]] = []

    def chunks() -> Iterator[bytes]:
        yield b"half"
        seen.append(sorted(p.relative_to(tmp_path / keys.folder).as_posix() for p in (tmp_path / keys.folder).rglob("*.part")))
        yield b"whole"

    store.put_media(keys.media, chunks())
    assert len(seen[0]) == 1 and seen[0][0].startswith(f"{PARTS}/.{SID}.wav.")
    assert sorted(p.name for p in (tmp_path / keys.folder).iterdir()) == [PARTS, f"{SID}.wav"]


def test_the_probe_names_the_directory(tmp_path: Path) -> None:
    assert LocalStore(tmp_path).probe() == f"storage    {tmp_path}"
