"""Private keys by public key SID: found, missing, wrong or unusable, each with a reason that names no key material."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.standin.encryption import encrypt
from tests.support.recording_keys import key_pair
from workers.encryption import details
from workers.encryption.private_keys import KeyDirectory, MissingKey, UnusableKey, check
from workers.failures import PermanentError

SID = "CR" + "a" * 32


def encrypted_metadata(public_pem: bytes, plaintext: bytes = b"audio") -> tuple[bytes, dict[str, object]]:
    media, found = encrypt(public_pem, SID, plaintext)
    return media, {"encryption_details": found}


def test_the_content_key_is_unwrapped_with_the_named_key(tmp_path: Path) -> None:
    pair = key_pair()
    pair.install(tmp_path, SID)
    _, metadata = encrypted_metadata(pair.public_pem)
    parsed = details.parse(metadata)
    assert parsed is not None and parsed.public_key_sid == SID and len(parsed.iv) == 12
    assert len(KeyDirectory(tmp_path).content_key(parsed)) == 32
    assert "encryption_cek" not in repr(parsed) and base64.b64encode(parsed.encrypted_cek).decode() not in repr(parsed)


def test_a_missing_key_names_the_sid_and_the_file_to_add(tmp_path: Path) -> None:
    _, metadata = encrypted_metadata(key_pair().public_pem)
    parsed = details.parse(metadata)
    assert parsed is not None
    with pytest.raises(MissingKey, match=f"no private key for {SID}: add {SID}.pem") as caught:
        KeyDirectory(tmp_path).content_key(parsed)
    assert isinstance(caught.value, PermanentError)
    with pytest.raises(MissingKey, match="RECORDING_KEYS_DIR is not set"):
        KeyDirectory(None).content_key(parsed)


def test_a_wrong_key_is_a_clear_permanent_failure(tmp_path: Path) -> None:
    key_pair(1).install(tmp_path, SID)
    _, metadata = encrypted_metadata(key_pair().public_pem)
    parsed = details.parse(metadata)
    assert parsed is not None
    with pytest.raises(PermanentError, match="RSA-OAEP failed") as caught:
        KeyDirectory(tmp_path).content_key(parsed)
    assert "PRIVATE KEY" not in str(caught.value)


def test_a_password_protected_or_broken_pem_is_refused_without_its_contents(tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(key_pair().private_pem, password=None)
    locked = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(b"secret"))
    (tmp_path / f"{SID}.pem").write_bytes(locked)
    with pytest.raises(UnusableKey, match="password-protected"):
        KeyDirectory(tmp_path).load(SID)
    (tmp_path / f"{SID}.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
    with pytest.raises(UnusableKey, match=f"{SID}.pem is not a PEM private key") as caught:
        check(tmp_path)
    assert "not really" not in str(caught.value)


def test_check_lists_the_sids_found(tmp_path: Path) -> None:
    other = "CR" + "b" * 32
    key_pair().install(tmp_path, SID)
    key_pair(1).install(tmp_path, other)
    (tmp_path / "README.txt").write_text("not a key")
    assert check(tmp_path) == [SID, other]


@pytest.mark.parametrize(("raw", "reason"), [
    ({"encryption_public_key_sid": "nope", "encryption_iv": "AAAAAAAAAAAAAAAA", "encryption_cek": "AA=="}, "no public key SID"),
    ({"encryption_public_key_sid": SID, "encryption_iv": "AAAA", "encryption_cek": "AA=="}, "is 3 bytes, not 12"),
    ({"encryption_public_key_sid": SID, "encryption_iv": "AAAAAAAAAAAAAAAA", "encryption_cek": "!!"}, "cek is not base64"),
    ("a string", "not an object"),
])
def test_malformed_details_are_permanent(raw: object, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        details.parse({"encryption_details": raw})


def test_no_details_means_in_the_clear() -> None:
    assert details.parse({"encryption_details": None}) is None
    assert details.parse({}) is None
