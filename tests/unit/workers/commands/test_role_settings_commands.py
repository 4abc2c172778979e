"""Each command reads its own role's settings: a mistake in the console's stops `admin`, not `serve`."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.support.paths import REPO_ROOT
from tests.support.servers import free_port, wait_for

BAD_CONSOLE_SETTING = {"ADMIN_TRUSTED_PROXIES": "not-an-address"}


def _env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "REDIS_", "TWILIO_"))}
    return {**env, "REDIS_URL": redis_url, "LOG_FORMAT": "json", **BAD_CONSOLE_SETTING}


def test_serve_starts_whatever_the_console_s_settings_say(redis_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "serve", "--port", str(port)],
                            env=_env(redis_url), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def answers() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        wait_for(answers, timeout=30, what="serve to answer")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_admin_and_check_refuse_it_in_one_line(redis_url: str) -> None:
    for command in (["admin"], ["check"]):
        out = subprocess.run([sys.executable, "-m", "workers.commands.cli", *command], env=_env(redis_url), cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "ADMIN_TRUSTED_PROXIES" in out.stderr + out.stdout and "Traceback" not in out.stderr
