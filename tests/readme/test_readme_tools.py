"""The fault tools the README says to run by hand ("Measure it yourself") run, small, and print what it says."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.support import readme

ROOT = readme.ROOT
pytestmark = pytest.mark.slow


def _run(module: str, *args: str, timeout: float = 300) -> str:
    # Its own process group, ended whatever happens: a tool killed mid-run (a timeout) would
    # otherwise leave its Redis, stand-in, receiver and workers running.
    tool = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = tool.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(tool.pid, signal.SIGKILL)
        tool.wait()
        for stream in (tool.stdout, tool.stderr):
            if stream is not None:
                stream.close()
    assert tool.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return stdout


def test_the_chaos_tool_prints_accepted_archived_lost_and_archived_twice() -> None:
    # No kills: a short, quiet run only shows the tool works and prints what the README says it does.
    out = _run("tests.perf.chaos", "--callbacks", "30", "--redis-kills", "0", "--kill-every", "1000", "--settle-seconds", "120")
    counts = re.search(r"^accepted (\d+)\s+refused \d+\s+archived (\d+)\s+lost (\d+)$", out, flags=re.M)
    assert counts, out
    assert counts.groups() == ("30", "30", "0")
    assert re.search(r"^archived twice 0 ", out, flags=re.M), out


@pytest.mark.timeout(600)
def test_the_chaos_tool_with_s3_storage_counts_objects_and_unfinished_uploads() -> None:
    # Quiet too (no kills, no restarts), but S3's faults on: a retry must absorb each of them.
    out = _run("tests.perf.chaos", "--storage", "s3", "--callbacks", "20", "--redis-kills", "0", "--kill-every", "1000",
               "--s3-restarts", "0", "--s3-faults", "0.02", "--settle-seconds", "240", timeout=540)
    counts = re.search(r"^accepted (\d+)\s+refused \d+\s+archived (\d+)\s+lost (\d+)\s", out, flags=re.M)
    assert counts, out
    assert counts.groups() == ("20", "20", "0")
    assert re.search(r"^archived twice 0 \(objects written more than once: none\)$", out, flags=re.M), out
    assert re.search(r"^unfinished multipart uploads 0$", out, flags=re.M), out


def test_the_hostile_tool_counts_5xx_answers_and_queued_jobs() -> None:
    out = _run("tests.perf.hostile", "--requests", "200", "--concurrency", "8")
    assert re.search(r"^requests 200\s+5xx 0\s+queued jobs 0\b", out, flags=re.M), out
    # "sends 10,000 forged and malformed requests" when run as the README shows it.
    source = (ROOT / "tests" / "perf" / "hostile.py").read_text()
    assert re.search(r'"--requests", type=int, default=10_000', source)
