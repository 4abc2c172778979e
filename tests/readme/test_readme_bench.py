"""The receiver bench measures what the README says: ours as `serve` builds it, every case under the same collector settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.perf.receiver_bench import CASES, DEFAULT_CASES
from tests.support import readme
from workers.commands import gc_tuning, serve_processes

ROOT = readme.ROOT

# What each case's factory leaves behind in a fresh interpreter, as uvicorn would call it.
_PROBE = """
import gc, importlib, json, sys
module, name = sys.argv[1].split(":")
getattr(importlib.import_module(module), name)()
print(json.dumps({"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_the_bench_builds_ours_with_serves_own_factory() -> None:
    assert CASES["fast"].target == serve_processes.APP
    assert CASES["stock"].target == serve_processes.APP
    assert (CASES["fast"].env["REDIS_PIPE"], CASES["stock"].env["REDIS_PIPE"]) == ("fast", "stock")
    assert set(DEFAULT_CASES) <= set(CASES)


@pytest.mark.parametrize("case", ["bare", "asgi", "tutorial"])
def test_every_comparison_app_runs_under_the_collector_settings_serve_applies(case: str) -> None:
    # Built, never served: the tutorial app's Redis client does not connect until a request.
    env = {"TWILIO_AUTH_TOKEN": "probe-token", "REDIS_URL": "redis://127.0.0.1:1/0", "PUBLIC_BASE_URL": "https://x.example"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, CASES[case].target], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "", "PYTHONPATH": str(ROOT), **env},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads(done.stdout)
    assert tuple(state["thresholds"]) == gc_tuning.THRESHOLDS
    assert state["frozen"] > 0


def test_the_readme_describes_the_bench_as_it_runs() -> None:
    text = readme.text()
    assert "ours is built by `serve`'s own factory" in text
    assert "the comparison apps get the same collector settings" in text
