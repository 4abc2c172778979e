"""The scheduled reconciler: one chain of RQ jobs, however many workers start, each pass scheduling the next."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID, drain
from workers.commands.settings import Settings
from workers.reconcile.job import ensure_scheduled, next_slot

# Long enough that a test never straddles a boundary (which would rightly schedule the next slot).
INTERVAL = 1_000_000


def scheduled(redis: Redis) -> list[str]:
    return ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()


def test_many_workers_starting_at_once_schedule_one_pass(pipeline_settings: Callable[..., Settings], redis: Redis) -> None:
    settings = pipeline_settings(reconcile_interval_seconds=INTERVAL)
    ids: list[str | None] = []
    threads = [threading.Thread(target=lambda: ids.append(ensure_scheduled(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and ids[0] is not None
    assert scheduled(redis) == [ids[0]]
    job = Job.fetch(ids[0], connection=redis, serializer=JSONSerializer)
    slot = int(ids[0].rsplit("-", 1)[1])
    assert job.func_name == keys.RECONCILE_FUNCTION and slot % INTERVAL == 0
    registry = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    assert registry.get_scheduled_time(job).timestamp() == slot


def test_a_zero_interval_turns_the_schedule_off(pipeline_settings: Callable[..., Settings], redis: Redis) -> None:
    assert ensure_scheduled(pipeline_settings(reconcile_interval_seconds=0)) is None
    assert scheduled(redis) == []


def test_the_job_runs_a_pass_keeps_its_summary_and_schedules_the_next_once(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(reconcile_interval_seconds=INTERVAL)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    first = ensure_scheduled(settings)
    # Run a pass now, as RQ's scheduler would when the slot comes.
    queue = Queue("recordings", connection=redis, serializer=JSONSerializer)
    queue.enqueue(keys.RECONCILE_FUNCTION, {"v": 1}, job_id="rr-reconcile-now")
    drain(settings)

    ran = Job.fetch("rr-reconcile-now", connection=redis, serializer=JSONSerializer)
    assert ran.get_status() == "finished"
    result = ran.return_value()
    assert result is not None and result["queued"] == "1" and result["next"] == first
    assert scheduled(redis) == [first]
    last = redis.hgetall(keys.RECONCILE_LAST)
    assert last[b"queued"] == b"1" and last[b"errors"] == b"0" and last[b"at"]
    # The recording the pass found was processed by the same workers.
    assert redis.hget(keys.recording_key("voice", recording.sid), "archived_at")


def test_next_slot_follows_the_interval_grid() -> None:
    assert [next_slot(t, 600) for t in (0.0, 599.9, 600.0)] == [600, 600, 1200]
