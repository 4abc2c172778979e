"""RSA key pairs for Voice Recording Encryption tests: the private half as a `<CR sid>.pem` file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes

    def install(self, directory: Path, public_key_sid: str) -> Path:
        """Put the private key where RECORDING_KEYS_DIR looks for it."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{public_key_sid}.pem"
        path.write_bytes(self.private_pem)
        return path


@lru_cache(maxsize=4)
def key_pair(which: int = 0) -> KeyPair:
    """One of a few 2048-bit pairs, made once per test process (`which` picks another pair)."""
    del which
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(private, public)
