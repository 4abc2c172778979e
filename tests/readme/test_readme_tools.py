"""The fault tools the README says to run by hand ("Measure it yourself") run, small, and print what it says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import readme

ROOT = readme.ROOT
pytestmark = pytest.mark.slow


def _run(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_chaos_tool_prints_accepted_archived_lost_and_archived_twice() -> None:
    # No kills: a short, quiet run only shows the tool works and prints what the README says it does.
    out = _run("tests.perf.chaos", "--callbacks", "30", "--redis-kills", "0", "--kill-every", "1000", "--settle-seconds", "120")
    counts = re.search(r"^accepted (\d+)\s+refused \d+\s+archived (\d+)\s+lost (\d+)$", out, flags=re.M)
    assert counts, out
    assert counts.groups() == ("30", "30", "0")
    assert re.search(r"^archived twice 0 ", out, flags=re.M), out


def test_the_hostile_tool_counts_5xx_answers_and_queued_jobs() -> None:
    out = _run("tests.perf.hostile", "--requests", "200", "--concurrency", "8")
    assert re.search(r"^requests 200\s+5xx 0\s+queued jobs 0\b", out, flags=re.M), out
    # "sends 10,000 forged and malformed requests" when run as the README shows it.
    source = (ROOT / "tests" / "perf" / "hostile.py").read_text()
    assert re.search(r'"--requests", type=int, default=10_000', source)
