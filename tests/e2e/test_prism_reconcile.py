"""`recording-receiver reconcile` against Prism serving Twilio's own OpenAPI descriptions, not our stand-in.

Prism (https://github.com/stoplightio/prism) mocks each API from ../shared/twilio-oai/ and refuses
requests the description does not allow (401 without Basic auth, 422 for a PageSize over the
maximum or a date that is not date-time), so a clean pass shows our requests are Twilio-shaped
and our reading of Twilio's example answers is right. Static mode answers each operation's first
example: voice `readFull` (one completed recording), video `readEmpty`. No example has a next page,
so paging is checked with Prism as a validating proxy in front of the stand-in: every page request,
including those built from Twilio-style absolute `next_page_url`s, must pass Twilio's descriptions.

Run by hand:  npm install --prefix ~/.cache/prism @stoplight/prism-cli
              PRISM_BIN=~/.cache/prism/node_modules/.bin/prism .venv/bin/python -m pytest tests/e2e/test_prism_reconcile.py -s
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.paths import REPO_ROOT
from tests.support.servers import free_port, wait_for

ROOT = REPO_ROOT
SPECS = ROOT.parent / "shared" / "twilio-oai"
EXAMPLE_RE = "RE" + "a" * 32

pytestmark = pytest.mark.slow


def prism_bin() -> str:
    found = os.environ.get("PRISM_BIN") or shutil.which("prism")
    if not found or not Path(found).exists():
        pytest.skip("Prism not found: set PRISM_BIN or put `prism` on PATH (npm install --prefix DIR @stoplight/prism-cli)")
    if not (SPECS / "twilio_api_v2010.json").exists():
        pytest.skip(f"Twilio OpenAPI descriptions not found in {SPECS}")
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def prism(binary: str, spec: str, log: Path, upstream: str | None = None) -> Iterator[str]:
    """`prism mock SPEC`, or `prism proxy SPEC UPSTREAM` (validates each request, then forwards it)."""
    port = free_port()
    mode = ["proxy", "--errors", str(SPECS / spec), upstream] if upstream else ["mock", str(SPECS / spec)]
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, *mode, "-h", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=90, what=f"prism on {spec}")
            if proc.poll() is not None:
                pytest.fail(f"prism exited: {log.read_text()[-2000:]}")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def reconcile(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("recording-receiver")), "reconcile", *args]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    print(done.stdout)
    return done


def line(stdout: str, source: str) -> list[str]:
    return next(row for row in stdout.splitlines() if row.startswith(source + " ")).split()


def test_reconcile_against_prism_mocking_twilios_descriptions(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    binary = prism_bin()
    with prism(binary, "twilio_api_v2010.json", tmp_path / "api.log") as api, \
            prism(binary, "twilio_video_v1.json", tmp_path / "video.log") as video:
        env = dict(
            os.environ, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN="prism-accepts-any",
            TWILIO_API_BASE_URL=api, TWILIO_VIDEO_BASE_URL=video, TWILIO_MEDIA_BASE_URL=video,
            DATA_DIR=str(tmp_path / "data"), LOG_FORMAT="json",
        )
        # The examples are from 2015-2016: reach back that far.
        first = reconcile(env, "--source", "voice", "--source", "video", "--since", "2015-01-01")
        second = reconcile(env, "--source", "voice", "--source", "video")
    logs = (tmp_path / "api.log").read_text() + (tmp_path / "video.log").read_text()

    assert first.returncode == 0, first.stdout + first.stderr
    assert line(first.stdout, "voice")[3:7] == ["1", "1", "1", "0"]  # seen, missing, queued, duplicates
    assert f"queued     voice {EXAMPLE_RE} completed" in first.stdout
    assert line(first.stdout, "video")[3:4] == ["0"] and "    error " not in first.stdout
    assert first.stdout.rstrip().endswith("errors 0  -> ok")
    [job] = Queue("recordings", connection=redis, serializer=JSONSerializer).get_jobs()
    payload = job.args[0]
    assert (job.id, payload["origin"], payload["related"]) == (
        f"rr-voice-{EXAMPLE_RE}-completed", "reconciler", {"call_sid": "CA" + "a" * 32, "conference_sid": "CF" + "a" * 32}
    )
    # The second pass starts at the watermark (the example's date minus the overlap) and queues nothing.
    assert second.returncode == 0 and line(second.stdout, "voice")[2] == "2016-10-14T20:56:34Z"
    assert line(second.stdout, "voice")[4:6] == ["0", "0"]
    # Prism accepted every request as the descriptions define them.
    assert "UNPROCESSABLE_ENTITY" not in logs and "UNAUTHORIZED" not in logs and "Request terminated with error" not in logs


def test_paging_requests_pass_prisms_validation_of_twilios_descriptions(
    redis_url: str, standin: Any, tmp_path: Path
) -> None:
    binary = prism_bin()
    for kind in ("voice", "video", "media"):
        for _ in range(5):
            standin.state.add(kind, account_sid=ACCOUNT_SID)
    # Absolute links as Twilio writes them; the reconciler must move them onto the configured host.
    standin.state.public_base_url = "https://video.twilio.com"
    upstream = standin.base_url
    with prism(binary, "twilio_api_v2010.json", tmp_path / "api.log", upstream) as api, \
            prism(binary, "twilio_video_v1.json", tmp_path / "video.log", upstream) as video, \
            prism(binary, "twilio_media_v1.json", tmp_path / "media.log", upstream) as media:
        env = dict(
            os.environ, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_API_BASE_URL=api, TWILIO_VIDEO_BASE_URL=video, TWILIO_MEDIA_BASE_URL=media,
            RECONCILE_PAGE_SIZE="2", DATA_DIR=str(tmp_path / "data"), LOG_FORMAT="json",
        )
        done = reconcile(env, "--source", "voice", "--source", "video", "--source", "media")
    assert done.returncode == 0, done.stdout + done.stderr
    for source in ("voice", "video", "media"):
        assert line(done.stdout, source)[3:6] == ["5", "5", "5"], source
    for name in ("api", "video", "media"):
        log = (tmp_path / f"{name}.log").read_text()
        # Prism forwards only requests its description allows (else it answers 422 itself).
        assert log.count("Request received") == log.count("Forwarding") == 3, log[-3000:]
        assert "UNPROCESSABLE_ENTITY" not in log
    assert all(r["status"] == 200 for r in standin.state.requests())
