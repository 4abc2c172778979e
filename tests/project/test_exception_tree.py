"""One exception tree: every exception class our packages define derives from RecordingReceiverError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

from receiver.kernel.errors import RecordingReceiverError

PACKAGES = ("receiver", "workers", "console")

def _modules() -> list[ModuleType]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            found.append(importlib.import_module(info.name))
    return found


def _our_exceptions() -> dict[str, type[BaseException]]:
    return {
        f"{cls.__module__}.{cls.__qualname__}": cls
        for module in _modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    }


def test_every_exception_class_we_define_derives_from_the_common_base() -> None:
    ours = _our_exceptions()
    assert len(ours) >= 17, sorted(ours)  # the walk found the modules at all
    outside = sorted(name for name, cls in ours.items() if not issubclass(cls, RecordingReceiverError))
    assert outside == [], f"not under RecordingReceiverError: {outside}"


def test_each_keeps_the_base_its_callers_catch() -> None:
    ours = _our_exceptions()
    expected = {
        "receiver.kernel.errors.BadCallback": ValueError, "receiver.kernel.errors.BadSetting": ValueError,
        "receiver.app.enqueue.NotReplicated": importlib.import_module("redis.exceptions").RedisError,
        "workers.commands.cli_errors.Mistake": importlib.import_module("click").ClickException,
        "workers.twilio_rest.egress.Refused": ours["workers.failures.PermanentError"],
        "console.queries.BadFilter": ValueError, "console.actions.NotFailed": LookupError,
    }
    for name, base in expected.items():
        assert issubclass(ours[name], base), (name, base)
