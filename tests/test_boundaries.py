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
