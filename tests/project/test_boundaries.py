"""The dependency arrows of DESIGN.md: pure modules load no framework; receiver never sees workers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
PURE = ["receiver.kernel.events", "receiver.kernel.sids", "receiver.kernel.errors", "receiver.kernel.keys", "receiver.kernel.settings",
        "receiver.app.signature", "receiver.app.form", "receiver.app.signed_url", "receiver.kernel.accounts", "receiver.app.sources.voice",
        "receiver.app.sources.video", "receiver.app.sources.media", "receiver.app.sources.legacy",
        "receiver.app.sources.twilio_urls", "receiver.kernel.stats"]


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
    code = "import sys, receiver.kernel.events; print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette','rq','redis'}))"
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


# The rooms of DESIGN.md's picture and the rooms each may import from. A module's room is the
# longest prefix that names it; an import of a room not listed here (type-only imports included:
# an arrow is an arrow) fails with the module and what it imported.
ROOMS: dict[str, tuple[str, ...]] = {
    "receiver.kernel": (),
    "receiver.app": ("receiver.kernel",),
    # The console reads archives back (media, the commit record) through the storage seam.
    "console": ("receiver.kernel", "workers.storage"),
    "workers.failures": ("receiver.kernel",),
    "workers.settings": ("receiver.kernel",),
    "workers.twilio_rest": ("receiver.kernel", "workers.failures", "workers.settings"),
    # Storage knows nothing of Twilio or jobs: it takes a stream of chunks and keeps them.
    "workers.storage": ("receiver.kernel", "workers.failures", "workers.settings"),
    # Twilio's recording encryption undone: keys, the CEK, the GCM stream (no Twilio calls, no storage).
    "workers.encryption": ("receiver.kernel", "workers.failures", "workers.settings"),
    # Events going out (webhooks, reactions): jobs hand it what it needs; it sends through the egress rules.
    "workers.outbound": ("receiver.kernel", "workers.failures", "workers.settings", "workers.twilio_rest"),
    "workers.jobs": ("receiver.kernel", "workers.failures", "workers.settings", "workers.twilio_rest", "workers.storage",
                     "workers.encryption", "workers.outbound"),
    "workers.reconcile": ("receiver.kernel", "workers.failures", "workers.settings", "workers.twilio_rest", "workers.jobs"),
    # The backlog export: the reconciler's listing and queueing, run to the end of a window.
    "workers.export": ("receiver.kernel", "workers.failures", "workers.settings", "workers.twilio_rest", "workers.jobs",
                       "workers.reconcile"),
    "workers.runtime": ("receiver.kernel", "workers.failures", "workers.settings", "workers.jobs", "workers.reconcile",
                        "workers.storage"),
    # The composition root: the one room that sees every other (it builds each role's parts).
    "workers.commands": ("receiver", "workers", "console"),
}
OURS = ("receiver", "workers", "console")


def _room(module: str) -> str | None:
    matches = [room for room in ROOMS if module == room or module.startswith(room + ".")]
    return max(matches, key=len) if matches else None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_module_lives_in_a_room() -> None:
    homeless = [_module_name(p) for pkg in OURS for p in (ROOT / pkg).rglob("*.py")]
    assert [m for m in homeless if _room(m) is None and m not in OURS and m not in ("workers.__main__",)] == []


def test_every_import_follows_an_arrow_of_the_picture() -> None:
    offenders = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            room = _room(module)
            if room is None:
                continue
            allowed = (room, *ROOMS[room])
            for target in sorted(_imports(path)):
                if target.split(".")[0] not in OURS or target in OURS:
                    continue
                if not any(target == a or target.startswith(a + ".") for a in allowed):
                    offenders.append(f"{module} ({room}) imports {target}")
    assert offenders == []


def test_the_rule_catches_a_wrong_arrow(tmp_path: Path) -> None:
    # The check itself: a kernel module importing the app is refused.
    bad = tmp_path / "bad.py"
    bad.write_text("from receiver.app.factory import create_app\n")
    assert _room("receiver.kernel.bad") == "receiver.kernel"
    assert not any(t.startswith(a) for t in _imports(bad) for a in ("receiver.kernel", *ROOMS["receiver.kernel"]))


# Each library's internals in one package (DESIGN.md, "Library internals are quarantined"): a
# redis-py or RQ release that moves them breaks one named place, which the contract tests cover.
QUARANTINE = {
    "receiver/app/redis_pipe": ("redis._parsers", "._writer", "set_protocol("),
    "workers/runtime/rq_internals": (
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
