"""The README's promise about mistakes: each command, given one, prints one line saying what to do and exits 2;
`check` names what breaks signatures; a running `up`'s Redis is found without copying its URL."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver
from tests.readme.test_readme_cli import COMMAND, ROOT, env
from tests.support.servers import answers_200, free_port, wait_for
from workers.commands import up_record
from workers.commands.settings import Settings

CREDENTIALS = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
SECRET = "do-not-show-this-secret"


def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, with only `extra` of our settings in its environment."""
    return subprocess.run([COMMAND, *args], env=env(**extra), cwd=ROOT, capture_output=True, text=True, timeout=60)


def assert_one_line(done: subprocess.CompletedProcess[str], command: str, *said: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr naming the command and saying `said`; no secret."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr[-3000:])
    assert done.stdout == "", done.stdout
    [line] = done.stderr.strip().splitlines() or [""]
    assert line.startswith(f"recording-receiver {command}: "), line
    for words in said:
        assert words in line, (words, line)
    assert SECRET not in done.stderr and "Traceback" not in done.stderr
    return line


def closed_url(path: str = "/twilio/recordings/voice") -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def closed_redis() -> str:
    return f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"


# -- missing and invalid settings ----------------------------------------------------------------

@pytest.mark.parametrize("command", ["serve", "worker", "admin", "reconcile"])
def test_a_command_that_needs_redis_names_redis_url_when_it_is_unset(command: str, tmp_path: Path) -> None:
    assert_one_line(run(command, DATA_DIR=str(tmp_path), **CREDENTIALS), command, "REDIS_URL", "is not set")


SHARED_MISTAKES = [
    ("LOG_LEVEL", "loud", "INFO"),
    ("TWILIO_WEBHOOK_SHARED_KEYS", SECRET, "JSON"),
    ("REDIS_URL", f"{SECRET}@localhost:6379", "redis://"),
]
RECEIVER_MISTAKES = [
    ("PUBLIC_BASE_URL", "hooks.example.com", "https://hooks.example.com"),
    ("MAX_BODY_BYTES", "lots", "integer"),
    ("OUTAGE_RESPONSE", "418", "204"),
]
WORKER_MISTAKES = [("RECONCILE_INTERVAL_SECONDS", "-5", "greater than or equal to 0")]


# Each command reads its own role's settings (serve the receiver's, reconcile the workers'); check
# reads every role's.
@pytest.mark.parametrize(("command", "variable", "value", "expected"), [
    *[("serve", *mistake) for mistake in SHARED_MISTAKES + RECEIVER_MISTAKES],
    *[("check", *mistake) for mistake in SHARED_MISTAKES + RECEIVER_MISTAKES + WORKER_MISTAKES],
    *[("reconcile", *mistake) for mistake in SHARED_MISTAKES + WORKER_MISTAKES],
])
def test_an_invalid_setting_is_named_with_what_it_expects_and_never_its_value(
    command: str, variable: str, value: str, expected: str, tmp_path: Path
) -> None:
    settings = {"REDIS_URL": closed_redis(), "DATA_DIR": str(tmp_path), **CREDENTIALS, variable: value}
    done = run(command, **settings)
    line = assert_one_line(done, command, variable, expected)
    assert value not in line.partition(": ")[2].replace(expected, "")


def test_a_broken_accounts_file_is_named_without_its_tokens(tmp_path: Path) -> None:
    broken = tmp_path / "accounts.json"
    broken.write_text(json.dumps({ACCOUNT_SID: {"auth_token": SECRET}})[:-2])
    done = run("serve", REDIS_URL=closed_redis(), TWILIO_ACCOUNTS_FILE=str(broken), DATA_DIR=str(tmp_path))
    assert_one_line(done, "serve", "TWILIO_ACCOUNTS_FILE", str(broken), "not JSON")
    missing = run("check", TWILIO_ACCOUNTS_FILE=str(tmp_path / "none.json"), DATA_DIR=str(tmp_path))
    assert_one_line(missing, "check", "TWILIO_ACCOUNTS_FILE", "No such file")


# -- bad arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "said"), [
    (["serve", "--port", "eighty"], "--port"),
    (["up", "--workers", "two"], "--workers"),
    (["reconcile", "--source", "fax"], "--source"),
    (["simulate", "--source", "video", "--status", "absent", "http://127.0.0.1:9/"], "recording-completed"),
    (["simulate", "127.0.0.1:8000/twilio/recordings/voice"], "http(s) URL"),
    (["worker", "--burst", "--no-such-option"], "--no-such-option"),
])
def test_a_bad_argument_is_one_line_pointing_at_help(args: list[str], said: str, tmp_path: Path) -> None:
    done = run(*args, REDIS_URL=closed_redis(), DATA_DIR=str(tmp_path), **CREDENTIALS)
    assert_one_line(done, args[0], said, "--help")


def test_an_unknown_command_is_one_line() -> None:
    done = run("serv")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.strip() == (
        "recording-receiver: No such command 'serv'. Did you mean 'serve'? (see --help)"
    )


def test_reconcile_refuses_a_since_that_is_not_a_date(tmp_path: Path) -> None:
    done = run("reconcile", "--since", "yesterday", REDIS_URL=closed_redis(), DATA_DIR=str(tmp_path), **CREDENTIALS)
    assert_one_line(done, "reconcile", "--since", "ISO 8601")


# -- unreachable Redis, ports in use, a closed target --------------------------------------------

def test_reconcile_says_which_redis_does_not_answer_without_its_password(tmp_path: Path) -> None:
    done = run("reconcile", REDIS_URL=closed_redis(), DATA_DIR=str(tmp_path), **CREDENTIALS)
    assert_one_line(done, "reconcile", "cannot reach Redis at redis://:***@127.0.0.1:")


@pytest.mark.parametrize(("command", "setting"), [("serve", "--port"), ("admin", "ADMIN_PORT"), ("up", "--port")])
def test_a_server_refuses_a_port_in_use_in_one_line(
    command: str, setting: str, taken_port: int, redis_url: str, tmp_path: Path
) -> None:
    extra = {"ADMIN_USERNAME": "operator", "ADMIN_PASSWORD": SECRET, "ADMIN_PORT": str(free_port())}
    if command == "admin":
        extra["ADMIN_PORT"] = str(taken_port)
    args = [] if command == "admin" else ["--port", str(taken_port)]
    done = run(command, *args, REDIS_URL=redis_url, DATA_DIR=str(tmp_path), **extra, **CREDENTIALS)
    assert_one_line(done, command, f"127.0.0.1:{taken_port}", setting)


def test_admin_refuses_an_open_bind_without_credentials_in_one_line(redis_url: str, tmp_path: Path) -> None:
    done = run("admin", "--host", "0.0.0.0", "--port", str(free_port()), REDIS_URL=redis_url, DATA_DIR=str(tmp_path))
    assert_one_line(done, "admin", "console not started")


def test_up_refuses_a_data_directory_it_cannot_use_before_starting_anything(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run("up", "--data-dir", str(blocker / "data"), "--port", str(free_port()), ADMIN_PORT=str(free_port()), **CREDENTIALS)
    assert_one_line(done, "up", f"cannot use the data directory {blocker / 'data'}", "--data-dir")


def test_simulate_to_a_closed_port_says_nothing_answers_there(tmp_path: Path) -> None:
    url = closed_url()
    done = run("simulate", url, DATA_DIR=str(tmp_path), **CREDENTIALS)
    assert_one_line(done, "simulate", f"nothing answers at {url.split('/twilio')[0]}", "is the receiver running")


def test_simulate_without_credentials_names_them(tmp_path: Path) -> None:
    done = run("simulate", closed_url(), DATA_DIR=str(tmp_path))
    assert_one_line(done, "simulate", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")


def test_simulate_without_a_url_and_no_up_running_asks_for_the_url(tmp_path: Path) -> None:
    assert_one_line(run("simulate", DATA_DIR=str(tmp_path), **CREDENTIALS), "simulate", "callback URL", "no `up` is running")


# -- check: what breaks signatures and delivery --------------------------------------------------

def test_check_names_the_variables_when_no_account_or_no_token_is_configured(redis_url: str, tmp_path: Path) -> None:
    none = run("check", REDIS_URL=redis_url, DATA_DIR=str(tmp_path))
    assert none.returncode == 1
    [line] = [line for line in none.stdout.splitlines() if line.startswith("accounts ")]
    assert all(name in line for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNTS_FILE")), line
    no_token = run("check", REDIS_URL=redis_url, DATA_DIR=str(tmp_path), TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    assert no_token.returncode == 1 and "without an auth token: set TWILIO_AUTH_TOKEN" in no_token.stdout


@pytest.mark.parametrize(("base", "code", "said"), [
    ("http://hooks.example.com", 1, "public     PUBLIC_BASE_URL must be https://"),
    ("http://127.0.0.1:8000", 0, "warning    PUBLIC_BASE_URL is http:// on this machine"),
    ("http://localhost:8000", 0, "warning    PUBLIC_BASE_URL is http:// on this machine"),
    ("https://hooks.example.com", 0, None),
])
def test_check_fails_plain_http_except_on_this_machine(base: str, code: int, said: str | None, redis_url: str, tmp_path: Path) -> None:
    done = run("check", REDIS_URL=redis_url, PUBLIC_BASE_URL=base, DATA_DIR=str(tmp_path), **CREDENTIALS)
    assert done.returncode == code, done.stdout + done.stderr
    assert (said in done.stdout) if said else "PUBLIC_BASE_URL" not in done.stdout, done.stdout
    assert f"callback   {base}/twilio/recordings/voice" in done.stdout


# -- a running `up`'s Redis and receiver ----------------------------------------------------------

def test_a_record_of_an_up_that_died_is_ignored(redis_url: str, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = up_record.write(tmp_path, redis_url, closed_url(""))
    path.write_text(json.dumps({**json.loads(path.read_text()), "pid": dead.pid}))
    done = run("check", DATA_DIR=str(tmp_path), **CREDENTIALS)
    assert "REDIS_URL and REDIS_SENTINELS unset" in done.stdout and "using the running" not in done.stdout


@pytest.mark.slow
def test_check_reconcile_and_simulate_use_the_running_ups_redis_and_it_is_forgotten_when_up_stops(
    standin: object, tmp_path: Path
) -> None:
    port = free_port()
    extra = dict(CREDENTIALS, ADMIN_PORT=str(free_port()), TWILIO_API_BASE_URL=standin.base_url,
                 TWILIO_VIDEO_BASE_URL=standin.base_url, TWILIO_MEDIA_BASE_URL=standin.base_url)
    up = subprocess.Popen([COMMAND, "up", "--port", str(port)], cwd=tmp_path, env=env(**extra),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = tmp_path / "data" / up_record.FILE
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz") and record.exists(), timeout=60, what="`up`")
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        password = (tmp_path / "data" / "redis" / "password").read_text().strip()

        def here(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([COMMAND, *args], cwd=tmp_path, env=env(**extra), capture_output=True, text=True, timeout=60)

        check = here("check")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "redis      using the running `up`'s redis://:***@127.0.0.1:" in check.stdout
        assert "redis      reachable at redis://:***@" in check.stdout
        simulated = here("simulate", "--status", "absent")
        assert simulated.returncode == 0 and simulated.stdout.startswith("204 No Content"), simulated.stdout + simulated.stderr
        assert f"receiver   http://127.0.0.1:{port}/twilio/recordings/voice (the running `up`'s" in simulated.stderr
        reconciled = here("reconcile", "--source", "voice")
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
        [said] = [line for line in reconciled.stderr.splitlines() if line.startswith("redis ")]
        assert "using the running `up`'s redis://:***@127.0.0.1:" in said
        assert all(password not in out for done in (check, simulated, reconciled) for out in (done.stdout, done.stderr))
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=90)
    assert not record.exists()
    after = subprocess.run([COMMAND, "check"], cwd=tmp_path, env=env(**CREDENTIALS), capture_output=True, text=True, timeout=60)
    assert "REDIS_URL and REDIS_SENTINELS unset" in after.stdout


# -- readiness without an auth token -------------------------------------------------------------

def test_readyz_is_unavailable_and_the_start_up_warning_names_the_token_when_none_is_configured(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    serve = subprocess.Popen([COMMAND, "serve", "--port", str(port)], env=env(REDIS_URL=redis_url, DATA_DIR=str(tmp_path),
                             TWILIO_ACCOUNT_SID=ACCOUNT_SID), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="the receiver")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert "TWILIO_AUTH_TOKEN" in ready.json()["auth"]
    finally:
        serve.terminate()
        _, stderr = serve.communicate(timeout=30)
    [warning] = [line for line in stderr.splitlines() if "no auth token configured" in line]
    assert "TWILIO_AUTH_TOKEN" in warning


# -- simulate: every source, signed, unsigned and tampered ---------------------------------------

@pytest.mark.parametrize("source", ["voice", "video", "media", "legacy"])
def test_simulate_sends_each_sources_sample_and_the_receiver_refuses_it_unsigned_or_tampered(
    source: str, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]
) -> None:
    receiver = start_receiver(make_settings())
    url = receiver.url(source)
    signed = run("simulate", url, "--source", source, **CREDENTIALS)
    assert signed.returncode == 0 and signed.stdout.startswith("204 No Content  "), signed.stdout + signed.stderr
    for how, why in (("--unsigned", "sent without a signature"), ("--tamper", "a parameter was changed after signing")):
        refused = run("simulate", url, "--source", source, how, **CREDENTIALS)
        assert refused.returncode == 0, refused.stdout + refused.stderr
        [line] = refused.stdout.splitlines()
        assert line.startswith("403 Forbidden  ") and line.endswith(f"refused: {why}, as it should be"), line


def test_simulate_unsigned_fails_when_the_receiver_takes_it() -> None:
    """A receiver that answers 204 to anything (not ours): the refusal simulate expected did not come."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.support.servers import listening_socket, serve_app

    async def accepts_anything(request: Request) -> Response:
        return Response(status_code=204)

    sock = listening_socket()
    with serve_app(Starlette(routes=[Route("/x", accepts_anything, methods=["POST"])]), sock=sock):
        done = run("simulate", f"http://127.0.0.1:{sock.getsockname()[1]}/x", "--unsigned", **CREDENTIALS)
    assert done.returncode == 1 and "ACCEPTED although it should have been refused" in done.stdout


def test_simulate_signs_the_url_the_receiver_rebuilds_from_public_base_url(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]
) -> None:
    public = "https://hooks.example.com"
    receiver = start_receiver(make_settings(public_base_url=public))
    direct = run("simulate", receiver.url(), "--status", "absent", PUBLIC_BASE_URL=public, **CREDENTIALS)
    assert direct.returncode == 0 and direct.stdout.startswith("204 No Content"), direct.stdout + direct.stderr
    unset = run("simulate", receiver.url(), "--status", "absent", **CREDENTIALS)
    assert unset.returncode == 1 and unset.stdout.startswith("403 Forbidden") and "signature did not match" in unset.stdout


def test_simulate_help_lists_every_sources_statuses() -> None:
    import re

    from workers.commands.simulate import SOURCES

    shown = run("simulate", "--help")
    assert shown.returncode == 0
    for source, (statuses, _, _) in SOURCES.items():
        assert re.search(rf"\b{source}\s+{re.escape(', '.join(statuses))}\s*$", shown.stdout, re.M), (source, shown.stdout)
