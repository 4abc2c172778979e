"""Worker processes as RQ sees them: started before Redis, stopped cleanly, killed, and named."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, drain
from tests.support.lifecycle_worker import STAND_IN_JOBS
from tests.support.paths import REPO_ROOT
from tests.support.servers import free_port, wait_for
from workers.commands import embedded_redis
from workers.commands.settings import Settings
from workers.runtime.rq_internals.job_allowlist import AllowlistedJob
from workers.runtime.rq_internals.pool import ThreadPool, worker_name
from workers.runtime.rq_internals.thread_worker import ThreadWorker

ROOT = REPO_ROOT
QUEUE = "recordings"
THREADS = 2
LEASE_SECONDS = 4
PASSWORD = "lifecycle-secret"


@dataclass
class WorkerProcess:
    """A `recording-receiver worker` process and its JSON log (stderr)."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # RQ's own lines are plain text
            if isinstance(entry, dict) and entry.get("event") == event:
                found.append(entry)
        return found


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts worker processes; every one still running at the end is killed."""
    started: list[WorkerProcess] = []

    def start(redis_url: str, *args: str) -> WorkerProcess:
        index = len(started)
        env = dict(
            os.environ, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            DATA_DIR=str(tmp_path / f"worker-{index}"), LOG_FORMAT="json", WORKER_THREADS=str(THREADS),
            WORKER_LEASE_SECONDS=str(LEASE_SECONDS), WORKER_MAINTENANCE_SECONDS="1", RECONCILE_INTERVAL_SECONDS="0",
        )
        log = tmp_path / f"worker-{index}.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.lifecycle_worker", "worker", *args], env=env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )
        started.append(WorkerProcess(proc, log))
        return started[-1]

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(timeout=10)


class Doorstep:
    """A listener on the port where Redis will be, hanging up on every caller and counting them."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.05)
        self.callers = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.close()
            self.callers += 1

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass
class LateRedis:
    """A port where no redis-server runs until `start()`; that one wants a password."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis.from_url(self.url, socket_connect_timeout=0.5)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [embedded_redis.find_binary(), *embedded_redis.redis_args(self.data_dir, self.port), "--requirepass", PASSWORD]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._answers, timeout=10, what="redis-server to answer")

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except RedisError:
            return False


@pytest.fixture
def late_redis(tmp_path: Path) -> Iterator[LateRedis]:
    redis = LateRedis(tmp_path / "redis", free_port())
    yield redis
    if redis.proc is not None:
        redis.proc.terminate()
        redis.proc.wait(timeout=10)


def listed(redis: Redis) -> list[Worker]:
    """The workers RQ lists for our queue, as `rq info`, rq-dashboard and our console see them."""
    return Worker.all(queue=Queue(QUEUE, connection=redis))  # type: ignore[return-value]


def names_of(worker: WorkerProcess, redis: Redis) -> set[str]:
    return {w.name for w in listed(redis) if w.pid == worker.pid}


def registry(redis: Redis) -> set[str]:
    """RQ's worker registry, read directly: the sets `Worker.all` starts from."""
    keys = [*redis.smembers("rq:workers"), *redis.smembers(f"rq:workers:{QUEUE}")]
    return {(key.decode() if isinstance(key, bytes) else key).removeprefix("rq:worker:") for key in keys}


def all_registered(worker: WorkerProcess, redis: Redis) -> set[str]:
    names = names_of(worker, redis)
    return names if len(names) == THREADS else set()


def enqueue(redis: Redis, func: str, *args: Any) -> Job:
    return Queue(QUEUE, connection=redis, serializer=JSONSerializer).enqueue(func, *args)


def status(job: Job) -> JobStatus:
    return job.get_status(refresh=True)


@pytest.mark.timeout(120)
def test_worker_started_before_redis_waits_for_it_then_works(
    late_redis: LateRedis, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker(late_redis.url)
    wait_for(lambda: worker.events("waiting for Redis"), timeout=30, what="the worker to say it waits for Redis")
    # Callers counted while it keeps waiting: more than one attempt, still one log line.
    doorstep = Doorstep(late_redis.port)
    try:
        wait_for(lambda: doorstep.callers >= 2, timeout=30, what="the worker to try Redis again, twice")
    finally:
        doorstep.close()
    assert worker.proc.poll() is None
    late_redis.start()
    redis = late_redis.client()
    wait_for(lambda: all_registered(worker, redis), timeout=30, what="the worker threads to register")
    job = enqueue(redis, "os.getpid")
    wait_for(lambda: status(job) == JobStatus.FINISHED, timeout=30, what="the job to run")
    assert job.return_value() == worker.pid

    waits = worker.events("waiting for Redis")
    assert len(waits) == 1
    assert waits[0]["redis"] == f"127.0.0.1:{late_redis.port}"
    assert PASSWORD not in worker.log.read_text()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 0


def test_sigterm_while_waiting_for_redis_exits_cleanly(late_redis: LateRedis, start_worker: Callable[..., WorkerProcess]) -> None:
    worker = start_worker(late_redis.url)
    wait_for(lambda: worker.events("waiting for Redis"), timeout=30, what="the worker to say it waits for Redis")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=10) == 0


def test_sigterm_deregisters_every_worker_and_releases_the_scheduler_lock(
    redis_url: str, redis: Redis, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker(redis_url)
    names = wait_for(lambda: all_registered(worker, redis), timeout=30, what="the worker threads to register")
    wait_for(lambda: redis.exists(f"rq:scheduler-lock:{QUEUE}"), timeout=30, what="the scheduler to take its lock")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 0
    assert names_of(worker, redis) == set()
    assert not names & registry(redis)
    assert not redis.exists(f"rq:scheduler-lock:{QUEUE}")


def test_sigterm_mid_job_finishes_it_then_deregisters(
    redis_url: str, redis: Redis, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker(redis_url, "--no-scheduler")
    names = wait_for(lambda: all_registered(worker, redis), timeout=30, what="the worker threads to register")
    job = enqueue(redis, "time.sleep", 2)
    wait_for(lambda: status(job) == JobStatus.STARTED, timeout=30, what="the job to start")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 0
    assert status(job) == JobStatus.FINISHED
    assert names_of(worker, redis) == set()
    assert not names & registry(redis)


def test_second_signal_leaves_at_once(redis_url: str, redis: Redis, start_worker: Callable[..., WorkerProcess]) -> None:
    worker = start_worker(redis_url, "--no-scheduler")
    wait_for(lambda: all_registered(worker, redis), timeout=30, what="the worker threads to register")
    job = enqueue(redis, "time.sleep", 600)
    wait_for(lambda: status(job) == JobStatus.STARTED, timeout=30, what="the job to start")
    worker.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: worker.events("warm shutdown: finishing running jobs"), timeout=10, what="the warm shutdown")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 1


def test_killed_process_leaves_rq_within_a_lease_and_a_live_one_stays(
    redis_url: str, redis: Redis, start_worker: Callable[..., WorkerProcess]
) -> None:
    victim = start_worker(redis_url, "--no-scheduler")
    victim_names = wait_for(lambda: all_registered(victim, redis), timeout=30, what="the victim's threads to register")
    # One of the victim's workers dies busy: RQ keeps a busy worker for 90 s unless told otherwise.
    job = enqueue(redis, "time.sleep", 600)
    wait_for(lambda: status(job) == JobStatus.STARTED, timeout=30, what="the victim to start the job")
    survivor = start_worker(redis_url, "--no-scheduler")
    survivor_names = wait_for(lambda: all_registered(survivor, redis), timeout=30, what="the survivor's threads to register")

    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)

    def victim_gone() -> bool:
        names = {w.name for w in listed(redis)}
        assert survivor_names <= names, f"a live worker left RQ's list: {survivor_names - names}"
        return not victim_names & names

    wait_for(victim_gone, timeout=4 * LEASE_SECONDS, interval=0.2, what="the killed process's workers to leave RQ's list")
    assert survivor.proc.poll() is None


def test_names_say_host_pid_and_slot(redis_url: str, redis: Redis, start_worker: Callable[..., WorkerProcess]) -> None:
    worker = start_worker(redis_url, "--no-scheduler")
    wait_for(lambda: all_registered(worker, redis), timeout=30, what="the worker threads to register")
    host = socket.gethostname()
    assert sorted(w.name for w in listed(redis)) == [f"{host}.{worker.pid}.{slot}" for slot in range(THREADS)]


def test_live_worker_whose_registration_lapsed_registers_again(
    redis_url: str, redis: Redis, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker(redis_url, "--no-scheduler")
    names = wait_for(lambda: all_registered(worker, redis), timeout=30, what="the worker threads to register")
    # What a Redis outage longer than a lease leaves: the hashes expired, and RQ's next look
    # (`Worker.all`, registry maintenance) dropped them from its registry.
    redis.delete(*[f"rq:worker:{name}" for name in names])
    redis.srem("rq:workers", *[f"rq:worker:{name}" for name in names])
    redis.srem(f"rq:workers:{QUEUE}", *[f"rq:worker:{name}" for name in names])

    def whole_again() -> bool:
        found = [w for w in listed(redis) if w.name in names]
        return len(found) == THREADS and all(w.hostname == socket.gethostname() and w.birth_date for w in found)

    wait_for(whole_again, timeout=30, what="the workers to be listed again, with their details")


def test_thread_that_does_not_end_in_time_is_deregistered_for_it(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stuck_in_redis(self: ThreadWorker, timeout: int | None, max_idle_time: int | None = None) -> None:
        release.wait(60)  # a dequeue that Redis does not answer, deaf to the stop request

    monkeypatch.setattr(ThreadWorker, "dequeue_job_and_maintain_ttl", stuck_in_redis)
    pool_redis = Redis.from_url(redis_url)
    pool = ThreadPool(pool_redis, QUEUE, THREADS, with_scheduler=False)

    def stop_once_registered() -> None:
        # Registration comes after the pool took SIGTERM over, so the signal reaches the pool.
        wait_for(lambda: len(listed(redis)) == THREADS, timeout=30, what="the worker threads to register")
        os.kill(os.getpid(), signal.SIGTERM)

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stopper = threading.Thread(target=stop_once_registered, daemon=True)
    stopper.start()
    try:
        pool.run()
        assert listed(redis) == []
        assert registry(redis) == set()
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
        release.set()
        stopper.join(timeout=30)
        for slot in pool._slots:
            if slot.thread is not None:
                slot.thread.join(timeout=30)
        pool_redis.close()


def test_name_a_previous_run_still_holds_is_not_reused(
    make_settings: Callable[..., Settings], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AllowlistedJob, "allowed_functions", AllowlistedJob.allowed_functions | STAND_IN_JOBS)
    # A restarted container's process often gets its predecessor's host name and pid, and the
    # predecessor's registrations last until their lease lapses: RQ would refuse the same names.
    held = f"rq:worker:{worker_name(0, 0)}"
    redis.hset(held, mapping={"birth": "2026-01-01T00:00:00.000000Z", "pid": "1"})
    redis.expire(held, 60)
    job = enqueue(redis, "os.getpid")
    drain(make_settings(worker_threads=1))
    assert status(job) == JobStatus.FINISHED


def test_a_stopping_worker_waits_for_its_pubsub_thread_before_closing_its_connection(redis_url: str) -> None:
    # RQ's unsubscribe waits one second, then closes the connection under a thread that may still
    # read from it; that thread then reconnects and leaks the socket. Ours waits for the thread.
    client = Redis.from_url(redis_url)
    worker = ThreadWorker([Queue(QUEUE, connection=client)], name="pubsub-test", connection=client)
    try:
        worker.subscribe()
        thread = worker.pubsub_thread
        assert thread is not None
        # A stop that reaches redis-py's thread before its loop starts is lost (the loop then runs
        # on): RQ stops a worker long after subscribing, so the test waits for the loop too.
        wait_for(thread._running.is_set, what="the pubsub thread to run")
        worker.unsubscribe()
        assert not thread.is_alive()
        assert worker.pubsub is not None and worker.pubsub.connection is None
    finally:
        client.close()


def test_waiting_for_redis_leaves_no_connection_open(redis_url: str) -> None:
    # The probe that waits for Redis is its own client: closing it must close its connection,
    # which a client merely handed a pool does not do (its socket leaked when the pool was freed).
    from workers.runtime import redis_wait

    client = Redis.from_url(redis_url)
    try:
        probe = redis_wait._single_try_client(client)
        assert probe.ping()
        pool = probe.connection_pool
        probe.close()
        assert all(conn._sock is None for conn in pool._available_connections)
    finally:
        client.close()
