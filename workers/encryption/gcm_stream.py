"""AES-256-GCM decryption of a chunk stream whose 16-byte tag comes last, in constant memory."""

from __future__ import annotations

from collections.abc import Generator, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from workers.failures import PermanentError

TAG_BYTES = 16


class TagCheckFailed(PermanentError):
    """The media is not what Twilio encrypted (tampered, truncated or another key's)."""


def decrypted(chunks: Iterable[bytes], key: bytes, iv: bytes) -> Generator[bytes]:
    """The plaintext of `chunks` (ciphertext, then the tag). The last TAG_BYTES are held back
    until the stream ends; a failed tag check raises before this generator ends, so a store
    consuming it abandons its write instead of committing unverified plaintext."""
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).decryptor()
    held = b""
    for chunk in chunks:
        if not chunk:
            continue
        joined = held + chunk if held else chunk
        if len(joined) <= TAG_BYTES:
            held = joined
            continue
        held = joined[-TAG_BYTES:]
        plain = decryptor.update(joined[:-TAG_BYTES])
        if plain:
            yield plain
    if len(held) < TAG_BYTES:
        raise TagCheckFailed("encrypted media is shorter than its GCM tag")
    try:
        tail = decryptor.finalize_with_tag(held)
    except InvalidTag:
        raise TagCheckFailed("GCM tag check failed: the encrypted media was altered, cut short or is not this key's") from None
    if tail:
        yield tail
