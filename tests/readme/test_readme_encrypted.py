"""README "Encrypted recordings": the reasons it quotes are the ones a job fails with, word for word.
(The pipeline's promises are tested end to end in tests/e2e/test_encrypted_recordings*.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.standin.encryption import encrypt
from tests.support import readme
from tests.support.recording_keys import key_pair
from workers.encryption import details
from workers.encryption.gcm_stream import decrypted
from workers.encryption.private_keys import KeyDirectory

SID = "CR" + "d" * 32


def section() -> str:
    body = readme.text()
    start = body.index("## Encrypted recordings")
    return re.sub(r"\s+", " ", body[start:body.index("\n## ", start + 1)])


def quoted(starting: str) -> str:
    """The README's backquoted reason that starts with `starting`, its `CR…` made our SID."""
    match = re.search(rf"`({re.escape(starting)}[^`]*)`", section())
    assert match, starting
    return match.group(1).replace("CR…", SID)


def reason(exc: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc.value)


def test_the_quoted_reasons_are_the_real_ones(tmp_path: Path) -> None:
    media, raw = encrypt(key_pair().public_pem, SID, b"audio " * 100)
    found = details.parse({"encryption_details": raw})
    assert found is not None
    with pytest.raises(Exception) as missing:
        KeyDirectory(tmp_path).content_key(found)
    assert reason(missing) == quoted("no private key for")

    key_pair(1).install(tmp_path, SID)
    with pytest.raises(Exception) as wrong:
        KeyDirectory(tmp_path).content_key(found)
    assert quoted("the private key for") in reason(wrong)

    key_pair().install(tmp_path, SID)
    cek = KeyDirectory(tmp_path).content_key(found)
    with pytest.raises(Exception) as tampered:
        list(decrypted(iter([media[:-1] + b"\x00"]), cek, found.iv))
    assert reason(tampered).startswith(quoted("GCM tag check failed"))


def test_the_settings_it_names_are_in_the_settings_table() -> None:
    for name in ("RECORDING_KEYS_DIR", "KEEP_ENCRYPTED"):
        assert f"| `{name}` |" in readme.text()
