"""Log lines as the issue asks for them: one JSON object per line from every library, warnings and
exceptions included; a child's lines relayed whole, in JSON or prefixed with its name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.paths import REPO_ROOT
from workers.commands.stderr_relay import StderrRelay

ROOT = REPO_ROOT
REQUIRED = {"timestamp", "level", "logger", "role", "pid", "event"}


def _json_lines(text: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in text.splitlines()]
    for entry in entries:
        assert entry.keys() >= REQUIRED, entry
    return entries


def test_stdlib_records_warnings_and_an_uncaught_exception_are_one_json_line_each() -> None:
    code = (
        "import logging, warnings\nfrom receiver.kernel import logs\n"
        "logs.configure('INFO', 'json', role='receiver')\n"
        "logging.getLogger('rq.worker').warning('Worker %s: %s', 'w1', 'two\\nlines')\n"
        "logging.getLogger('rq.scheduler').info('Acquired scheduler lock for %s', 'recordings')\n"
        "warnings.warn('old API', DeprecationWarning, stacklevel=1)\n"
        "logs.get('readme').info('hello', answer=42)\n"
        "raise RuntimeError('boom')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "LOG_LEVEL")} | {"PYTHONWARNINGS": "always"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    rq, scheduler, warning, ours, crash = _json_lines(out.stderr)
    assert (rq["logger"], rq["level"], rq["event"], rq["role"]) == ("rq.worker", "warning", "Worker w1: two\nlines", "receiver")
    assert (scheduler["role"], scheduler["event"]) == ("scheduler", "Acquired scheduler lock for recordings")
    assert warning["logger"] == "py.warnings" and "DeprecationWarning: old API" in warning["event"]
    assert (ours["logger"], ours["answer"]) == ("readme", 42)
    assert len({entry["pid"] for entry in (rq, scheduler, warning, ours, crash)}) == 1
    assert crash["level"] == "critical" and crash["exception"].rstrip().endswith("RuntimeError: boom")
    assert "Traceback" in crash["exception"]


def test_an_unexpected_job_error_is_one_line_with_the_traceback_as_a_field(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    job = Queue("recordings", connection=redis, serializer=JSONSerializer).enqueue("workers.jobs.process_recording", {})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_"))}
    env.update(REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, LOG_FORMAT="json",
               DATA_DIR=str(tmp_path / "data"), RECONCILE_INTERVAL_SECONDS="0")
    out = subprocess.run([sys.executable, "-m", "workers.commands.cli", "worker", "--burst", "--no-scheduler"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    entries = _json_lines(out.stderr)
    assert {entry["role"] for entry in entries} == {"worker"}
    [error] = [entry for entry in entries if entry["level"] == "error"]
    assert (error["event"], error["job_id"]) == ("job raised an unexpected error", job.id)
    assert "Traceback" in error["exception"] and error["error"] in error["exception"]


def _chatty_child(tag: str, count: int) -> subprocess.Popen[bytes]:
    # Long lines written in pieces: a relay that passed bytes on as they came would interleave them.
    code = (
        "import sys\n"
        f"for i in range({count}):\n"
        f"    sys.stderr.write('{tag}-%05d-' % i); sys.stderr.flush()\n"
        f"    sys.stderr.write('{tag}' * 500 + '\\n'); sys.stderr.flush()\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


@pytest.mark.parametrize("json_lines", [True, False])
def test_relayed_lines_from_children_never_glue_together(json_lines: bool, capfd: pytest.CaptureFixture[str]) -> None:
    count = 300
    children = {tag: _chatty_child(tag, count) for tag in ("a", "b")}
    relays = [StderrRelay(f"worker-{i}", proc.stderr, proc.pid, json_lines=json_lines)  # type: ignore[arg-type]
              for i, proc in enumerate(children.values())]
    for proc in children.values():
        proc.wait(timeout=60)
    for relay in relays:
        relay.join(timeout=30)
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2 * count
    for line in lines:
        if json_lines:
            entry = json.loads(line)
            assert entry.keys() >= REQUIRED and entry["role"] == "worker", entry
            text = entry["event"]
        else:
            name, _, text = line.partition("| ")
            assert name.strip() in ("worker-0", "worker-1"), line
        tag = text[0]
        assert text == f"{tag}-{text[2:7]}-" + tag * 500, line[:80]


def test_a_childs_json_lines_pass_unchanged_and_on_a_terminal_get_its_name(capfd: pytest.CaptureFixture[str]) -> None:
    line = json.dumps({"event": "hello", "level": "info", "logger": "x", "role": "receiver", "pid": 7, "timestamp": "t"})
    code = f"import sys; sys.stderr.write({line!r} + '\\n')"
    for json_lines in (True, False):
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        assert proc.stderr is not None
        relay = StderrRelay("receiver", proc.stderr, proc.pid, json_lines=json_lines)
        proc.wait(timeout=30)
        relay.join(timeout=30)
        relayed = capfd.readouterr().err
        assert relayed == (line + "\n" if json_lines else f"receiver | {line}\n")


@pytest.mark.parametrize("json_lines", [True, False])
def test_a_last_line_without_its_newline_is_not_glued_to_the_next(json_lines: bool, capfd: pytest.CaptureFixture[str]) -> None:
    line = json.dumps({"event": "cut", "level": "info", "logger": "x", "role": "worker", "pid": 7, "timestamp": "t"})
    cut = '{"event": "cu'  # a JSON line cut short by a kill
    for code in (f"import sys; sys.stderr.write({line!r})", f"import sys; sys.stderr.write({cut!r})"):
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        assert proc.stderr is not None
        relay = StderrRelay("worker-0", proc.stderr, proc.pid, json_lines=json_lines)
        proc.wait(timeout=30)
        relay.join(timeout=30)
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    if json_lines:
        first, second = (json.loads(text) for text in lines)
        assert first["event"] == "cut" and second["event"] == cut, lines
