"""`make contract`'s two ends: the lowest release each pinned range allows, and the whole range to upgrade within."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
LIBS = ["redis", "rq", "hiredis"]


def _ranges() -> dict[str, Requirement]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return {r.name: r for r in map(Requirement, dependencies) if r.name in LIBS}


def _pins(end: str, *names: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / "requirements" / "contract_pins.py"
    return subprocess.run([sys.executable, str(script), end, *names], capture_output=True, text=True, timeout=60)


def test_the_low_end_is_each_range_s_lower_bound() -> None:
    ranges = _ranges()
    pins = dict(pin.split("==") for pin in _pins("low", *LIBS).stdout.split())
    assert set(pins) == set(LIBS)
    for name, version in pins.items():
        assert ranges[name].specifier.contains(version)
        assert any(s.operator == ">=" and Version(s.version) == Version(version) for s in ranges[name].specifier)


def test_the_high_end_upgrades_only_the_pinned_libraries_within_their_upper_bounds() -> None:
    ranges = _ranges()
    words = _pins("high", *LIBS).stdout.split()
    assert sorted(w for w in words if w.startswith("--")) == sorted(f"--upgrade-package={name}" for name in LIBS)
    requested = [Requirement(w) for w in words if not w.startswith("--")]
    assert {r.name: str(r.specifier) for r in requested} == {name: str(ranges[name].specifier) for name in LIBS}
    assert all(any(s.operator == "<" for s in r.specifier) for r in requested)


def test_a_library_not_in_pyproject_is_one_clear_line() -> None:
    done = _pins("low", "no-such-library")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "contract_pins: not in pyproject.toml's dependencies: no-such-library"
    ]
