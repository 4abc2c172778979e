"""`check` lists the private keys for encrypted recordings by SID, and fails on one it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.recording_keys import key_pair
from workers.commands import cli

SID = "CR" + "c" * 32


def run_check(redis_url: str, keys: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("RECORDING_KEYS_DIR", str(keys))
    result = CliRunner().invoke(cli.main, ["check"])
    return result.exit_code, result.output


def test_check_lists_the_keys_by_sid_never_their_contents(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_pair().install(tmp_path, SID)
    code, output = run_check(redis_url, tmp_path, monkeypatch)
    assert f"keys       1 private key(s) for encrypted recordings: {SID}" in output
    assert "PRIVATE KEY" not in output and code == 0, output


def test_check_fails_on_a_key_file_it_cannot_use(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / f"{SID}.pem").write_text("-----BEGIN PRIVATE KEY-----\nsecret-looking\n-----END PRIVATE KEY-----\n")
    code, output = run_check(redis_url, tmp_path, monkeypatch)
    assert f"keys       private key {SID}.pem is not a PEM private key" in output
    assert "secret-looking" not in output and "Traceback" not in output and code == 1
