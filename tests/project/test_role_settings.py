"""Settings by role: each setting belongs to one role (or to all), and a role reads only its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from console.settings import ConsoleSettings
from receiver.app.settings import ReceiverSettings
from receiver.kernel.settings import SharedSettings
from workers.commands.settings import Settings
from workers.settings import WorkerSettings

ROLES = {"receiver": ReceiverSettings, "workers": WorkerSettings, "console": ConsoleSettings}


def test_every_setting_belongs_to_exactly_one_role_or_to_all() -> None:
    shared = set(SharedSettings.model_fields)
    own = {role: set(cls.model_fields) - shared for role, cls in ROLES.items()}
    for role, fields in own.items():
        others = set().union(*(f for r, f in own.items() if r != role))
        assert fields & others == set(), role
    assert shared | set().union(*own.values()) == set(Settings.model_fields)
    assert all(fields for fields in own.values())


def test_a_role_starts_whatever_another_role_s_settings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    # A typo in the console's proxy list stops the console, not the receiver or the workers.
    monkeypatch.setenv("ADMIN_TRUSTED_PROXIES", "not-an-address")
    monkeypatch.setenv("MAX_BODY_BYTES", "0")  # the receiver's: refused by it alone
    assert WorkerSettings().retry_max == 8
    with pytest.raises(ValidationError, match="ADMIN_TRUSTED_PROXIES"):
        ConsoleSettings()
    with pytest.raises(ValidationError, match="max_body_bytes"):
        ReceiverSettings()
    with pytest.raises(ValidationError):
        Settings()


def test_the_joined_settings_are_every_role_s() -> None:
    settings = Settings(redis_url="redis://:pw@host/0")
    assert all(isinstance(settings, cls) for cls in ROLES.values())
    assert "pw" not in repr(settings)
