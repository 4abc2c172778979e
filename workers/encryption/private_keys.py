"""The customer's private keys: `<public key SID>.pem` files in RECORDING_KEYS_DIR, read when needed.

Read at each use, never cached, so a key added to the directory serves the next attempt (a
replay) without a restart. Key material never reaches a message: errors name the SID and file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from workers.encryption.details import EncryptionDetails
from workers.failures import PermanentError

CEK_BYTES = 32
SUFFIX = ".pem"


class MissingKey(PermanentError):
    """No private key for the recording's public key SID: add its file, then replay."""


class UnusableKey(PermanentError):
    """The key file is there but is no passwordless RSA private key in PEM."""


@dataclass(frozen=True)
class KeyDirectory:
    path: Path | None

    def file_for(self, public_key_sid: str) -> Path | None:
        return self.path / f"{public_key_sid}{SUFFIX}" if self.path else None

    def load(self, public_key_sid: str) -> rsa.RSAPrivateKey:
        path = self.file_for(public_key_sid)
        if path is None:
            raise MissingKey(f"recording is encrypted to {public_key_sid} and RECORDING_KEYS_DIR is not set")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingKey(f"no private key for {public_key_sid}: add {path.name} to RECORDING_KEYS_DIR, then replay") from None
        except OSError as exc:
            raise UnusableKey(f"private key {path.name} cannot be read: {exc.strerror}") from None
        return _parsed(data, path.name)

    def sids(self) -> list[str]:
        """The public key SIDs a file is present for (check lists them)."""
        if self.path is None:
            return []
        return sorted(p.name.removesuffix(SUFFIX) for p in self.path.glob(f"CR*{SUFFIX}") if p.is_file())

    def content_key(self, details: EncryptionDetails) -> bytes:
        """The recording's AES-256 key, unwrapped with the private key its details name."""
        key = self.load(details.public_key_sid)
        try:
            cek = key.decrypt(details.encrypted_cek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        except ValueError:
            raise PermanentError(
                f"the private key for {details.public_key_sid} does not open this recording's key (RSA-OAEP failed): wrong key file?"
            ) from None
        if len(cek) != CEK_BYTES:
            raise PermanentError(f"the recording's key is {len(cek)} bytes, not {CEK_BYTES} (AES-256)")
        return cek


def _parsed(data: bytes, name: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise UnusableKey(f"private key {name} is password-protected: store it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UnusableKey(f"private key {name} is not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UnusableKey(f"private key {name} is not an RSA key")
    return key


def check(path: Path) -> list[str]:
    """Every key file parsed (check's line): the SIDs found; UnusableKey names the first bad file."""
    keys = KeyDirectory(path)
    if not path.is_dir():
        raise UnusableKey(f"RECORDING_KEYS_DIR {path} is not a directory")
    for sid in keys.sids():
        keys.load(sid)
    return keys.sids()
