"""The backlog export at scale: ≥ 20,000 recordings across the four sources, a Ctrl-C mid-run, a resume.

    python -m tests.perf.export_run [--count 20000] [--interrupt-at 0.3] [--concurrency 8] [--deadline 1200]

Real processes: a redis-server, the Twilio stand-in (in this process, seeded in bulk: --count
recordings split over voice, video, media and legacy, one a minute from 2020-01-01), one
`recording-receiver worker` process, and `recording-receiver export --since 2020-01-01` run twice
with its output piped: SIGINT once --interrupt-at of the recordings are archived, then the same
command again, which resumes. Prints both runs' output (plain progress lines, final report), each
run's peak RSS (sampled every 50 ms with psutil) and time, and checks that every recording was
archived exactly once: one media file each in storage, one "done" job on each one's timeline
(transient failures retried before it are allowed), none "already archived" or "recovered".
A manual run, not part of the default suite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from redis import Redis

from receiver.kernel import keys
from tests.standin import StandinServer
from tests.support.paths import REPO_ROOT
from tests.support.servers import RedisProcess

ACCOUNT = "AC" + "fedcba9876543210" * 2
TOKEN = "export-run-token"
SOURCES = ("voice", "video", "media", "legacy")
OLDEST = datetime(2020, 1, 1, tzinfo=UTC)


class PeakRss:
    """The highest RSS a process reached, sampled on a thread until it exits."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._proc = psutil.Process(pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def join(self) -> int:
        self._thread.join(5)
        return self.peak


def _env(redis_url: str, base: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_SENTINELS", "STORAGE_DIR", "SPOOL_DIR", "TWILIO_ACCOUNTS")}
    env.update(REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_API_BASE_URL=base,
               TWILIO_VIDEO_BASE_URL=base, TWILIO_MEDIA_BASE_URL=base, DATA_DIR=str(work / "data"),
               STORAGE_DIR=str(work / "storage"), LOG_FORMAT="json", LOG_LEVEL="WARNING", RETRY_BASE_SECONDS="1",
               RECONCILE_INTERVAL_SECONDS="0")
    return env


def _archived(redis: Redis) -> int:
    return int(redis.hget(keys.EXPORT_RUN, "archived") or 0)  # type: ignore[arg-type]


def _export(env: dict[str, str], out: Path, redis: Redis, stop_at: int | None, deadline: float) -> tuple[int, int, float]:
    started = time.monotonic()
    with out.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "export", "--since", "2020-01-01"],
                                env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    peak = PeakRss(proc.pid)
    while proc.poll() is None:
        if stop_at is not None and _archived(redis) >= stop_at:
            proc.send_signal(signal.SIGINT)
            stop_at = None
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.05)
    return proc.returncode, peak.join(), time.monotonic() - started


def _check(redis: Redis, storage: Path, seeded: dict[str, list[str]]) -> list[str]:
    problems = []
    for source, sids in seeded.items():
        folder = storage / source / ACCOUNT
        media = {p.name.split(".")[0] for p in folder.iterdir() if p.suffix != ".json"} if folder.exists() else set()
        files = sum(1 for p in folder.iterdir() if p.suffix != ".json") if folder.exists() else 0
        if files != len(sids) or media != set(sids):
            problems.append(f"{source}: {files} media files for {len(sids)} recordings")
        pipe = redis.pipeline(transaction=False)
        for sid in sids:
            pipe.lrange(keys.timeline_key(source, sid), 0, -1)
        for sid, timeline in zip(sids, pipe.execute(), strict=True):
            outcomes = [e.get("outcome") for e in map(json.loads, timeline) if e.get("kind") == "job"]
            # A transient failure then a retry that archives is fine; two archives are not.
            if outcomes.count("done") != 1 or {"already archived", "recovered"} & set(outcomes):
                problems.append(f"{source} {sid}: job outcomes {outcomes}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--interrupt-at", type=float, default=0.3, help="fraction archived when SIGINT is sent")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=1200.0, help="seconds for the whole run")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline
    with tempfile.TemporaryDirectory(prefix="export-run-") as tmp:
        work = Path(tmp)
        redis_proc = RedisProcess(work / "redis")
        standin = StandinServer().start()
        worker = None
        try:
            standin.state.add_account(sid=ACCOUNT, auth_token=TOKEN)
            per = args.count // len(SOURCES)
            seeded = {s: [r.sid for r in standin.state.add_many(s, per, OLDEST, timedelta(minutes=1), account_sid=ACCOUNT)]
                      for s in SOURCES}
            print(f"seeded {per * len(SOURCES)} recordings ({per} per source) in the stand-in", flush=True)
            redis = redis_proc.client()
            env = _env(redis_proc.url, standin.base_url, work)
            with (work / "worker.out").open("wb") as log:
                worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker", "--concurrency",
                                           str(args.concurrency)], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            runs = []
            for name, stop_at in (("first run (Ctrl-C)", int(per * len(SOURCES) * args.interrupt_at)), ("resumed run", None)):
                code, peak, seconds = _export(env, work / f"{name[:5]}.out", redis, stop_at, deadline)
                runs.append((name, code, peak, seconds))
                print(f"\n===== {name}: exit {code}, {seconds:.1f}s, peak RSS {peak / 2**20:.1f} MiB =====", flush=True)
                print((work / f"{name[:5]}.out").read_text(), flush=True)
            problems = _check(redis, work / "storage", seeded)
            total = sum(r[3] for r in runs)
            print(f"\n{per * len(SOURCES)} recordings; export time {total:.1f}s over both runs "
                  f"({per * len(SOURCES) / total:.0f}/s); peak RSS " + ", ".join(f"{n}: {p / 2**20:.1f} MiB" for n, _, p, _ in runs))
            print("each archived exactly once" if not problems else "PROBLEMS:\n" + "\n".join(problems[:20]))
            redis.close()
            sys.exit(0 if not problems and runs[-1][1] == 0 else 1)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            standin.stop()
            redis_proc.stop()


if __name__ == "__main__":
    main()
