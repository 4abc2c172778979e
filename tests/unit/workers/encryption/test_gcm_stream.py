"""The streaming GCM decryptor: plaintext out in constant memory, nothing past a bad or missing tag."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.encryption.gcm_stream import TAG_BYTES, TagCheckFailed, decrypted
from workers.failures import PermanentError

KEY = bytes(range(32))
IV = bytes(range(12))


def sealed(plaintext: bytes) -> bytes:
    return AESGCM(KEY).encrypt(IV, plaintext, None)


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        yield data[start:cut]
        start = cut
    yield data[start:]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.lists(st.integers(min_value=0, max_value=320), max_size=8))
def test_any_chunking_gives_back_the_plaintext(plaintext: bytes, cuts: list[int]) -> None:
    # Cuts anywhere: inside the tag, between ciphertext and tag, empty chunks, one byte each.
    assert b"".join(decrypted(split(sealed(plaintext), cuts), KEY, IV)) == plaintext


def test_a_chunk_boundary_inside_the_tag() -> None:
    data = sealed(b"x" * 1000)
    for inside in range(1, TAG_BYTES):
        cut = len(data) - inside
        assert b"".join(decrypted(iter([data[:cut], data[cut:]]), KEY, IV)) == b"x" * 1000


def test_the_tag_is_held_back_until_the_end() -> None:
    # A chunk's last 16 bytes may be the tag: they wait for the next chunk (or the end).
    plaintext = os.urandom(5000)
    data = sealed(plaintext)
    out = decrypted(iter([data[:4000], data[4000:]]), KEY, IV)
    assert next(out) == plaintext[:4000 - TAG_BYTES]
    assert b"".join(out) == plaintext[4000 - TAG_BYTES:]


@pytest.mark.parametrize("where", [0, 100, -TAG_BYTES - 1, -TAG_BYTES, -1])
def test_a_tampered_byte_fails_the_tag_check_before_the_stream_ends(where: int) -> None:
    data = bytearray(sealed(os.urandom(3000)))
    data[where] ^= 0x01
    chunks = decrypted(iter([bytes(data[:1024]), bytes(data[1024:])]), KEY, IV)
    with pytest.raises(TagCheckFailed, match="GCM tag check failed") as caught:
        list(chunks)
    assert isinstance(caught.value, PermanentError)


def test_a_truncated_file_fails() -> None:
    data = sealed(os.urandom(3000))
    with pytest.raises(TagCheckFailed, match="GCM tag check failed"):
        list(decrypted(iter([data[:-1]]), KEY, IV))
    with pytest.raises(TagCheckFailed, match="shorter than its GCM tag"):
        list(decrypted(iter([data[:TAG_BYTES - 1]]), KEY, IV))


def test_the_wrong_key_fails_the_tag_check() -> None:
    data = sealed(b"hello")
    with pytest.raises(TagCheckFailed):
        list(decrypted(iter([data]), bytes(32), IV))
