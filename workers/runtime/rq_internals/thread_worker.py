"""An RQ worker that runs in a thread, so one process works on many I/O-bound jobs at once."""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import SimpleWorker, worker_registration
from rq.executions import Execution
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers
from rq.queue import Queue
from rq.registry import clean_registries
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty
from rq.utils import now

from receiver.kernel import logs
from workers.failures import JobFailed
from workers.runtime.rq_internals.job_allowlist import AllowlistedJob

log = logs.get("workers.runtime.rq_internals.thread_worker")

# How long a blocking dequeue may last before the thread looks for a stop request again (and,
# idle, heartbeats again).
DEQUEUE_SLICE_SECONDS = 2
# How long a stopping worker waits for its pubsub thread (see `ThreadWorker.unsubscribe`).
PUBSUB_STOP_SECONDS = 10


class ThreadWorker(SimpleWorker):
    """An ordinary RQ worker (it registers, heartbeats and shows in `rq info`) minus what needs
    the main thread: signals belong to the pool, and job timeouts use a timer thread.

    Its execution lease is short and renewed by the pool while a job runs, so a process killed
    mid-job (SIGKILL, OOM) leaves a job that RQ declares abandoned and retries within about a
    minute, instead of after the whole job timeout. Its registration in RQ lasts one lease too,
    renewed by every heartbeat, so a killed process's workers leave `rq info` as soon.
    """

    death_penalty_class = TimerDeathPenalty
    # Runs only our own job functions, whatever a job hash in Redis names.
    job_class = AllowlistedJob
    # RQ's reconnect backoff doubles up to a minute: after a Redis restart an idle worker could
    # sit out most of that minute while jobs waited. Workers on one Redis can afford to ask sooner.
    max_connection_wait_time = 5.0

    def __init__(self, *args: object, lease_seconds: int = 60, **kwargs: object) -> None:
        super().__init__(*args, worker_ttl=lease_seconds, **kwargs)  # type: ignore[arg-type, misc]
        self.lease_seconds = lease_seconds
        # An idle worker heartbeats once a slice: at least three beats per lease leave room for
        # a late one.
        self.dequeue_slice = max(1, min(DEQUEUE_SLICE_SECONDS, lease_seconds // 3))
        self._running: tuple[Job, Execution] | None = None
        self._running_lock = threading.Lock()

    @classmethod
    def name_in_use(cls, connection: Redis, name: str) -> bool:
        """Whether RQ's `register_birth` would refuse `name`: a live worker holds it."""
        key = cls.redis_worker_namespace_prefix + name
        return bool(connection.exists(key)) and not connection.hexists(key, "death")

    def register_birth(self) -> None:
        super().register_birth()  # type: ignore[no-untyped-call]
        # RQ registers a worker for its TTL plus a minute; ours lasts one lease, like every beat.
        self.connection.expire(self.key, self.lease_seconds)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, but for one lease whatever RQ asks (its TTL plus a minute idle, 90 s
        busy), and keeping us in RQ's worker registry, from which a lookup during a Redis outage
        longer than a lease (our hash gone) drops us."""
        if pipeline is not None:
            self._beat(pipeline)
            return
        with self.connection.pipeline() as own:
            self._beat(own)
            own.hexists(self.key, "birth")
            whole = own.execute()[-1]
        if not whole and not self._stop_requested:
            self._restore_hash()

    def _beat(self, pipeline: Pipeline) -> None:
        super().heartbeat(self.lease_seconds, pipeline=pipeline)
        if not self._stop_requested:  # once stopping, the pool may have deregistered us already
            worker_registration.register(self, pipeline)

    def _restore_hash(self) -> None:
        """Our hash lapsed and the beats since re-created it with a field or two (a timestamp, the
        state): put back what `rq info` shows."""
        if self.birth_date is None:
            return
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            pipeline.expire(self.key, self.lease_seconds)
            pipeline.execute()

    def _install_signal_handlers(self) -> None:
        """The pool's main thread owns SIGINT/SIGTERM and asks each worker to stop."""

    def handle_exception(
        self, job: Job, exc_type: type[BaseException] | None = None, exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """One line per failure instead of RQ's message with a traceback inside: none for a failure
        the job classified (it logged "job failed" with the reason and attempt), one with the
        traceback as a field for anything else."""
        if not isinstance(exc, JobFailed):
            log.error("job raised an unexpected error", job_id=job.id, queue=job.origin, error=type(exc).__name__,
                      exc_info=(exc_type, exc, tb) if exc is not None else None)
        call_exception_handlers(self._exc_handlers, job, exc_type, exc, tb)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.lease_seconds

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        with self._running_lock:
            self._running = (job, execution)
        try:
            self.perform_job(job, queue, execution)
        finally:
            with self._running_lock:
                self._running = None
        self.set_state("idle")

    def renew_lease(self) -> None:
        """Called by the pool: extend the running job's execution, as a forking worker's monitor does."""
        with self._running_lock:
            running = self._running
        if running is not None:
            self.maintain_heartbeats(*running)

    def clean_registries(self) -> None:
        """RQ's registry maintenance (retrying abandoned jobs among it) under a short lock.

        RQ guards it with a lock that lasts 15 minutes; a worker killed, or cut off from Redis,
        while holding it would stop abandoned jobs from being retried for that long (seen in the
        chaos run). Ours lasts two maintenance intervals.
        """
        ttl = max(10, 2 * int(self.maintenance_interval))
        for queue in self.queues:
            key = f"rr:maintenance:{queue.name}"
            if not self.connection.set(key, self.name, nx=True, ex=ttl):
                continue
            clean_registries(queue, self._exc_handlers)
            worker_registration.clean_worker_registry(queue)
            queue.intermediate_queue.cleanup(self, queue)
            self.connection.delete(key)
        self.last_cleaned_at = now()  # type: ignore[assignment]

    @property
    def busy(self) -> bool:
        with self._running_lock:
            return self._running is not None

    def request_warm_stop(self) -> None:
        self._stop_requested = True

    def unsubscribe(self) -> None:
        """RQ's, except that the thread is told to stop before UNSUBSCRIBE goes out, and that the
        connection is closed only once the thread has ended. RQ unsubscribes first: when the
        thread read the reply before the stop, it went on to wait a minute for a subscription;
        then RQ closed the connection under it after one second, and a thread still reading
        reconnected and leaked the socket. Told first, the thread ends on the reply."""
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        thread.stop()
        with contextlib.suppress(RedisError):  # Redis gone: the thread ends on its own error
            pubsub.unsubscribe()
        thread.join(timeout=PUBSUB_STOP_SECONDS)
        pubsub.close()

    def deregister(self) -> None:
        """RQ's goodbye (`register_death`, as its teardown says it), for a worker whose thread is
        still blocked in Redis as the process leaves: a daemon thread never reaches its teardown."""
        self._stop_requested = True
        self.register_death()  # type: ignore[no-untyped-call]

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> tuple[Job, Queue] | None:
        """Dequeue in short slices so a stop request is seen within seconds, never mid-job."""
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=self.dequeue_slice)
            if result is not None:
                return result
            if timeout is None:  # burst mode: the queue is empty
                return None
        return None


class ThreadScheduler(RQScheduler):
    """RQ's scheduler in a thread of the pool instead of a forked process (forking a threaded
    process is unsafe); stopped by flag, like the workers."""

    def _install_signal_handlers(self) -> None:
        pass

    def start(self) -> threading.Thread:  # type: ignore[override]
        self._status = self.Status.STARTED
        thread = threading.Thread(target=self.work, name="rq-scheduler", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    @property
    def alive(self) -> bool:
        thread = getattr(self, "_thread", None)
        return bool(thread and thread.is_alive())
