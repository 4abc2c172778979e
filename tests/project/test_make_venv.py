"""`make`'s venv: a clear word on too old a Python, and a .venv made by a gone or old Python rebuilt, not failed on."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT


def _check_python() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_python", ROOT / "requirements" / "check_python.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _venv(tmp_path: Path, python: str | None) -> Path:
    """An installed-looking venv whose bin/python prints `python` as its version, or dangles when None."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    if python is None:
        (venv / "bin" / "python").symlink_to(tmp_path / "gone" / "python3.11")
    else:
        (venv / "bin" / "python").write_text(f"#!/bin/sh\necho {python}\n")
        (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml and the lock: make would skip the install
    return venv


def _plan(venv: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(["make", "--no-print-directory", "-n", "up", f"VENV={venv}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_working_venv_is_kept(tmp_path: Path) -> None:
    assert "-m venv" not in _plan(_venv(tmp_path, "3.11.7"))


@pytest.mark.parametrize("python", [None, "3.9.2"], ids=["python-gone", "python-too-old"])
def test_a_venv_made_by_a_gone_or_old_python_is_rebuilt(tmp_path: Path, python: str | None) -> None:
    venv = _venv(tmp_path, python)
    plan = _plan(venv)
    assert f"-m venv {venv}" in plan and "--require-hashes -r requirements/service.txt" in plan
    check = _check_python()
    assert check.main([str(venv)]) == 0 and not venv.exists()


def test_too_old_a_python_is_told_so_in_one_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert _check_python().main([str(ROOT / "no-venv-here")], running=(3, 9, 2)) == 1
    said = capsys.readouterr().err
    assert "recording-receiver needs Python 3.11 or newer" in said and "is Python 3.9.2" in said
    assert "PYTHON=python3.11" in said
