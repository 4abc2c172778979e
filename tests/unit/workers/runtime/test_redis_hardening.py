"""Whoever can reach Redis gets no further: workers run only our job functions, the embedded
server is a current Valkey behind a password, and no URL's password is ever shown."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError
from rq import Callback, Queue, Retry
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from console import causes
from console.failures import FailureIndex
from receiver.kernel import keys
from receiver.kernel.settings import redact_url
from tests.conftest import drain
from tests.support.rq_jobs import failure_trace
from tests.support.servers import RedisProcess
from workers.commands import cli, embedded_redis
from workers.commands.settings import Settings

QUEUE = "recordings"


def _queue(redis: Redis) -> Queue:
    return Queue(QUEUE, connection=redis, serializer=JSONSerializer)


def test_a_job_naming_any_other_callable_fails_without_running(
    redis: Redis, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    target = tmp_path / "made-by-an-intruder"
    job = _queue(redis).enqueue_call("os.mkdir", args=(str(target),), retry=None)

    drain(make_settings())

    assert not target.exists()
    assert job.get_status(refresh=True) == JobStatus.FAILED
    line = causes.last_line(failure_trace(job))
    assert "JobRefused" in line and "'os.mkdir'" in line and "not a job function" in line
    shown = FailureIndex(redis, QUEUE).one(job.id)
    assert shown is not None and "'os.mkdir'" in shown.line
    assert "never ran" in causes.explain(shown.line)


def test_a_refused_job_is_not_retried(redis: Redis, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    target = tmp_path / "again"
    job = _queue(redis).enqueue_call("os.mkdir", args=(str(target),), retry=Retry(max=3))

    drain(make_settings())

    job.refresh()
    assert job.get_status() == JobStatus.FAILED and not job.retries_left
    assert not target.exists()


def test_a_job_hash_written_by_hand_is_refused_too(redis: Redis, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    # What an intruder without RQ would do: our own job's hash, its function name swapped.
    target = tmp_path / "by-hand"
    job = _queue(redis).enqueue_call(keys.JOB_FUNCTION, args=({"v": 1},))
    redis.hset(job.key, "data", JSONSerializer.dumps(["os.mkdir", None, [str(target)], {}]))

    drain(make_settings())

    assert not target.exists()
    assert "'os.mkdir'" in causes.last_line(failure_trace(job))


def test_a_job_of_ours_with_a_callback_is_refused(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    # We enqueue no callbacks; RQ would import and call whatever a hash names as one.
    job = _queue(redis).enqueue_call(keys.JOB_FUNCTION, args=({"v": 1},), on_failure=Callback("os.abort"))

    drain(make_settings())

    assert job.get_status(refresh=True) == JobStatus.FAILED
    line = causes.last_line(failure_trace(job))
    assert "JobRefused" in line and "os.abort" in line


def test_the_embedded_server_is_a_current_valkey_that_wants_its_password(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    try:
        password = (tmp_path / "redis" / embedded_redis.PASSWORD_FILE).read_text().strip()
        assert server.url == f"redis://:{password}@127.0.0.1:{server.port}/0"
        info = server.client().info("server")
        assert str(info.get("valkey_version", "")).startswith("9."), info
        assert server.client().config_get("bind") == {"bind": "127.0.0.1"}
        anonymous = Redis(host="127.0.0.1", port=server.port, protocol=2)
        with pytest.raises((AuthenticationError, ResponseError), match=r"(?i)auth"):
            anonymous.set("k", "v")
        with pytest.raises(AuthenticationError):
            Redis(host="127.0.0.1", port=server.port, password="guess").ping()
    finally:
        server.stop()


def test_the_password_is_made_once_per_data_directory_readable_by_its_owner_only(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    first = server.url
    server.client().set("kept", "1")
    server.stop()
    server.start()
    try:
        assert server.url == first
        assert server.client().get("kept") == b"1"
        mode = (tmp_path / "redis" / embedded_redis.PASSWORD_FILE).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    finally:
        server.stop()
    other = embedded_redis.password_for(tmp_path / "elsewhere")
    assert other != embedded_redis.password_for(tmp_path / "redis")
    assert embedded_redis.password_for(tmp_path / "elsewhere") == other


def test_the_password_never_reaches_the_command_line(tmp_path: Path) -> None:
    # Every local user can read a process's arguments (`ps`).
    import psutil

    server = RedisProcess(tmp_path / "redis")
    try:
        password = embedded_redis.password_for(tmp_path / "redis")
        assert password not in " ".join(psutil.Process(server.proc.pid).cmdline())
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://app:s3cret@[::1]:6380/2", "rediss://app:***@[::1]:6380/2"),
        ("redis://h/0?password=s3cret&socket_timeout=5", "redis://h/0?password=***&socket_timeout=5"),
        ("unix:///run/redis.sock?db=1&password=s3cret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_settings_never_show_the_redis_password() -> None:
    settings = Settings(redis_url="redis://app:s3cret@redis.internal:6379/0", redis_sentinel_password="s3ntinel")
    for text in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert "s3cret" not in text and "s3ntinel" not in text
        assert "redis://app:***@redis.internal:6379/0" in text
    assert settings.redis_url == "redis://app:s3cret@redis.internal:6379/0"  # clients still get it whole


def test_check_names_the_redis_without_its_password(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "@" in redis_url  # the test Redis has a password
    password = redis_url.split("@", maxsplit=1)[0].rpartition(":")[2]
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    for reachable in (True, False):
        if not reachable:
            monkeypatch.setenv("REDIS_URL", f"redis://:{password}@127.0.0.1:1/0")
        result = CliRunner().invoke(cli.main, ["check"])
        assert password not in result.output
        assert "redis://:***@127.0.0.1:" in result.output, result.output
        assert ("reachable at" if reachable else "unreachable at") in result.output


def test_a_reconcile_job_scheduled_under_its_old_name_still_runs_the_reconciler(redis: Redis) -> None:
    # Scheduled by a release before the rooms moved, it is in Redis when new workers start.
    from workers.reconcile import reconcile
    from workers.runtime.rq_internals.job_allowlist import AllowlistedJob

    old = AllowlistedJob.create("workers.reconcile_job.reconcile", args=({},), connection=redis, serializer=JSONSerializer)
    assert old.refusal() is None and old.func is reconcile
    other = AllowlistedJob.create("workers.reconcile_job.anything_else", args=({},), connection=redis, serializer=JSONSerializer)
    assert other.refusal() is not None
