"""The dependency arrows of DESIGN.md: pure modules load no framework; receiver never sees workers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PURE = ["receiver.events", "receiver.sids", "receiver.errors", "receiver.keys", "receiver.settings",
        "receiver.signature", "receiver.form", "receiver.signed_url", "receiver.accounts", "receiver.sources.voice",
        "receiver.sources.video", "receiver.sources.media", "receiver.sources.legacy",
        "receiver.sources.twilio_urls", "receiver.stats"]


def test_pure_modules_load_no_web_framework_queue_or_redis() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {PURE!r}: importlib.import_module(name)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'rq', 'redis', 'uvicorn', 'httpx', 'workers'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_import_receiver_events_alone_is_light() -> None:
    code = "import sys, receiver.events; print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette','rq','redis'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_receiver_never_imports_workers() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imports(path) if m.split(".")[0] == "workers")
        for path in (ROOT / "receiver").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# Each library's internals in one package (DESIGN.md, "Library internals are quarantined"): a
# redis-py or RQ release that moves them breaks one named place, which the contract tests cover.
QUARANTINE = {
    "receiver/redis_pipe": ("redis._parsers", "._writer", "set_protocol("),
    "workers/rq_runtime": (
        "_install_signal_handlers", "_stop_requested", "_exc_handlers", "intermediate_queue", "scheduler._thread",
    ),
}


def test_library_internals_stay_in_their_quarantine() -> None:
    offenders = []
    for package in ("receiver", "workers", "console"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            for home, internals in QUARANTINE.items():
                if not where.startswith(home + "/"):
                    offenders += [f"{where}: {name}" for name in internals if name in text]
    assert offenders == []
