"""Redis goes away, or slows down, mid-stream: every accepted callback still becomes one job, in order."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, Receiver
from tests.support.servers import RedisProcess, wait_for
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params


def queued_sids(redis: Redis) -> list[str]:
    queue = Queue("recordings", connection=redis, serializer=JSONSerializer)
    return [job.args[0]["sid"] for job in queue.get_jobs()]


def send(receiver: Receiver, sid: str) -> httpx.Response:
    return receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", sid))


# Both transports (REDIS_PIPE) must spool, bound and recover alike.
PIPES = pytest.mark.parametrize("kind", ["fast", "stock"])


def ready(receiver: Receiver) -> dict[str, object]:
    return httpx.get(f"{receiver.base_url}/readyz", timeout=5).json()  # type: ignore[no-any-return]


@PIPES
def test_redis_stopped_mid_stream_loses_nothing_and_delivers_in_order(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    kind: str,
) -> None:
    receiver = start_receiver(make_settings(redis_url=own_redis.url, redis_pipe=kind))
    sids = [new_sid("RE") for _ in range(60)]
    for sid in sids[:20]:
        assert send(receiver, sid).status_code == 204
    own_redis.stop()
    for sid in sids[20:]:
        assert send(receiver, sid).status_code == 204
    state = ready(receiver)
    assert (state["status"], state["spool"], state["spooling"]) == ("degraded", 40, True)
    # A duplicate of an event accepted before the outage is spooled too, and deduped on delivery.
    assert send(receiver, sids[0]).status_code == 204

    own_redis.start()
    wait_for(lambda: ready(receiver)["spool"] == 0 and not ready(receiver)["spooling"], timeout=20, what="the spool to drain")
    assert queued_sids(own_redis.client()) == sids
    assert ready(receiver)["status"] == "ready"
    # And the pipeline is back on the fast path.
    late = new_sid("RE")
    assert send(receiver, late).status_code == 204
    assert queued_sids(own_redis.client())[-1] == late


def test_outage_answer_is_configurable_as_503(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]
) -> None:
    receiver = start_receiver(make_settings(redis_url=own_redis.url, outage_response=503))
    own_redis.stop()
    sid = new_sid("RE")
    assert send(receiver, sid).status_code == 503
    own_redis.start()
    wait_for(lambda: ready(receiver)["spool"] == 0 and not ready(receiver)["spooling"], timeout=20, what="drain")
    # Twilio's retry of the same callback is then a duplicate, not a second job.
    assert send(receiver, sid).status_code == 204
    assert queued_sids(own_redis.client()) == [sid]


@PIPES
def test_slow_redis_is_bounded_by_the_spool(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    kind: str,
) -> None:
    receiver = start_receiver(make_settings(redis_url=own_redis.url, spool_after_seconds=0.3, redis_pipe=kind))
    # A stopped Redis still accepts connections and commands, and answers none until continued:
    # the slowest Redis there is. So a 204 while it is stopped can only be the spool's.
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        sid = new_sid("RE")
        response = send(receiver, sid)
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    assert response.status_code == 204
    wait_for(lambda: sid in queued_sids(own_redis.client()), timeout=20, what="the spooled event to arrive")
    assert queued_sids(own_redis.client()).count(sid) == 1


@PIPES
def test_redis_restart_keeps_what_was_accepted(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    kind: str,
) -> None:
    receiver = start_receiver(make_settings(redis_url=own_redis.url, redis_pipe=kind))
    sids = [new_sid("RE") for _ in range(25)]
    for sid in sids:
        assert send(receiver, sid).status_code == 204
    own_redis.stop()
    own_redis.start()
    assert queued_sids(own_redis.client()) == sids
    # The dedupe ledger survived too: a late duplicate queues nothing.
    assert send(receiver, sids[3]).status_code == 204
    assert queued_sids(own_redis.client()) == sids
