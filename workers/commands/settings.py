"""Every role's settings joined, for the commands that run or check several roles (up, check)."""

from __future__ import annotations

from console.settings import ConsoleSettings
from receiver.app.settings import ReceiverSettings
from workers.settings import WorkerSettings


class Settings(ReceiverSettings, WorkerSettings, ConsoleSettings):
    """Every setting of every role, read from the environment in one place. A role's code takes
    its own class (`ReceiverSettings`, `WorkerSettings`, `ConsoleSettings`), which this is too."""


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; explicit overrides win (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
