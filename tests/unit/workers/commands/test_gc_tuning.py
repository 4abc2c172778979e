"""`serve` freezes the collector and raises its thresholds; building and running an app does neither."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver
from tests.support.readme import ROOT
from tests.support.servers import free_port
from workers.commands import gc_tuning
from workers.commands.settings import Settings

# Runs `serve` in a child process; a thread there reports the collector's state once /healthz
# answers (the server is up, so serve's start-up has run), then ends the process.
PROBE = """
import gc, os, sys, threading
from tests.support.servers import answers_200, wait_for
from workers.commands.cli import main

def report() -> None:
    wait_for(lambda: answers_200(sys.argv[2]), timeout=30, what="the receiver")
    print(gc.get_freeze_count() > 0, gc.get_threshold(), flush=True)
    os._exit(0)

threading.Thread(target=report, daemon=True).start()
main(["serve", "--port", sys.argv[1]])
"""


def test_serve_freezes_the_collector_and_raises_its_thresholds(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    ours = ("REDIS_", "TWILIO_", "ADMIN_", "PUBLIC_BASE_URL", "LOG_", "DATA_DIR", "STORAGE_DIR", "SPOOL_DIR", "RECONCILE_", "WORKER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, DATA_DIR=str(tmp_path),
               LOG_FORMAT="json", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE, str(port), f"http://127.0.0.1:{port}/healthz"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"True {gc_tuning.THRESHOLDS}", done.stdout


def test_an_app_started_in_a_process_leaves_its_collector_alone(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
) -> None:
    before = (gc.get_freeze_count(), gc.get_threshold())
    start_receiver(make_settings())  # built, started (its lifespan has run) and serving
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
