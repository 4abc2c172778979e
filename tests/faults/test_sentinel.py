"""Redis behind Sentinel: the receiver and workers find the master, and a failover under load loses nothing acknowledged."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis import Redis
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.exceptions import RedisError

from receiver.app.delivery import Delivered
from receiver.app.factory import create_app
from receiver.kernel.redis_client import async_redis, sync_redis
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support.servers import free_port, listening_socket, serve_app, wait_for, wait_for_count
from tests.support.twilio_signing import sign
from workers.commands import embedded_redis
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params
from workers.jobs.catalog import Catalog

MASTER = "mymaster"
# A master takes writes only while a replica is attached. Sentinel leaves the old master a
# master for about ten seconds after promoting the replica; without this it would keep taking
# (and the receiver acknowledging) events that its resync as a replica then throws away.
SAFE_WRITES = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "5"]


def _answers(port: int) -> bool:
    try:
        return bool(Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except RedisError:
        return False


@dataclass
class Node:
    """One redis-server (data node or sentinel) of this test, on its own port and directory."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, directory: Path, args: list[str]) -> Node:
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = directory / "redis.log"
        proc = subprocess.Popen(
            [embedded_redis.find_binary(), *args, "--port", str(port), "--logfile", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory,
        )
        node = cls(port, proc, log)
        try:
            wait_for(lambda: proc.poll() is not None or _answers(port), timeout=10, what=f"redis-server on {port}")
        except AssertionError:
            node.stop()
            raise
        return node

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=5)

    def role(self) -> str:
        return str(self.client().info("replication")["role"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@dataclass
class Cluster:
    master: Node
    replica: Node
    sentinel: Node

    def settings(self, tmp_path: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            redis_sentinels=f"127.0.0.1:{self.sentinel.port}", redis_sentinel_master=MASTER,
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, data_dir=tmp_path / "data", log_format="json",
            # The receiver answers 2xx only once the replica holds the event (see the failover test).
            redis_wait_replicas=1,
        )
        values.update(overrides)
        return Settings(**values)

    def master_port(self) -> int:
        _, port = self.sentinel.client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)


def _data_node(directory: Path, *extra: str) -> list[str]:
    """The embedded Redis's durable settings (AOF, noeviction) plus `extra`; port and log added by Node."""
    return [*embedded_redis.redis_args(directory, 0)[2:], *extra]


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[[str, list[str]], Node]]:
    """Starts redis-servers under tmp_path/<name>; all are killed after the test."""
    try:
        embedded_redis.find_binary()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    nodes: list[Node] = []

    def start(name: str, args: list[str]) -> Node:
        nodes.append(Node.start(tmp_path / name, args))
        return nodes[-1]

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
def cluster(tmp_path: Path, start_node: Callable[[str, list[str]], Node]) -> Cluster:
    """Master, one replica and one sentinel (quorum 1) on loopback; skipped when Sentinel cannot run."""
    master = start_node("master", _data_node(tmp_path / "master", *SAFE_WRITES))
    replica = start_node("replica", _data_node(tmp_path / "replica", *SAFE_WRITES, "--replicaof", "127.0.0.1", str(master.port)))
    wait_for(lambda: replica.client().info("replication")["master_link_status"] == "up", timeout=10, what="the replica to sync")
    conf = tmp_path / "sentinel" / "sentinel.conf"
    conf.parent.mkdir()
    # Sentinel rewrites this file as it learns the topology, so it lives in the test's directory.
    conf.write_text(
        "bind 127.0.0.1\n"
        f"dir {conf.parent}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 5000\n"
    )
    try:
        sentinel = start_node("sentinel", [str(conf), "--sentinel"])
    except AssertionError as exc:
        pytest.skip(f"{embedded_redis.find_binary()} does not answer as a Redis Sentinel: {exc}")
    if sentinel.proc.poll() is not None:
        pytest.skip(f"{embedded_redis.find_binary()} cannot run as a Redis Sentinel (exit {sentinel.proc.returncode})")
    wait_for(
        lambda: int(sentinel.client().sentinel_master(MASTER)["num-slaves"]) >= 1, timeout=15,
        what="the sentinel to discover the replica",
    )
    return Cluster(master, replica, sentinel)


def test_sentinel_settings_and_clients() -> None:
    settings = Settings(redis_sentinels="s1:26380, [::1]:26381 ,s3", redis_url="redis://:secret@ignored:1/3")
    assert settings.sentinel_addresses == [("s1", 26380), ("::1", 26381), ("s3", 26379)]
    with pytest.raises(ValidationError):
        Settings(redis_sentinels="s1:port")
    # Clients connect lazily: nothing here needs a running Redis.
    options = sync_redis(settings).connection_pool.connection_kwargs
    assert (options["db"], options["password"], "host" in options) == (3, "secret", False)
    assert async_redis(settings).connection_pool.connection_class is AsyncSentinelConnection
    with pytest.raises(ValueError, match="REDIS_URL may only be"):
        sync_redis(Settings(redis_sentinels="s1", redis_url="rediss://host/0"))


def queued_sids(node: Node) -> list[str]:
    """SIDs of the jobs waiting on `node`'s queue (job ids are rr-voice-<sid>-<status>)."""
    return [job_id.decode().split("-")[2] for job_id in node.client().lrange("rq:queue:recordings", 0, -1)]


def test_receiver_and_workers_find_the_master_through_sentinel(
    cluster: Cluster, standin: Any, start_receiver: Any, tmp_path: Path
) -> None:
    settings = cluster.settings(
        tmp_path, twilio_api_base_url=standin.base_url, retry_base_seconds=0, twilio_timeout_seconds=5, worker_threads=2,
    )
    receiver: Receiver = start_receiver(settings)
    recordings = [standin.state.add_voice(account_sid=ACCOUNT_SID) for _ in range(5)]
    for recording in recordings:
        assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    assert sorted(queued_sids(cluster.master)) == sorted(r.sid for r in recordings)
    assert httpx.get(f"{receiver.base_url}/readyz", timeout=5).json()["status"] == "ready"

    drain(settings)  # a real worker process's pool, connected through Sentinel too
    for recording in recordings:
        assert Catalog(cluster.master.client()).get("voice", recording.sid).get("archived_at")
        assert (settings.storage_path / "voice" / ACCOUNT_SID / f"{recording.sid}.wav").exists()
    assert queued_sids(cluster.master) == []


@dataclass
class Load:
    """Sends distinct signed callbacks one after another until stopped; remembers each answer."""

    receiver: Receiver
    stop: threading.Event = field(default_factory=threading.Event)
    acked: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                sid = new_sid("RE")
                params = voice_params(ACCOUNT_SID, "completed", sid)
                url = self.receiver.url()
                headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, params.items())}
                try:
                    status = client.post(url, data=params, headers=headers).status_code
                except httpx.HTTPError as exc:
                    self.refused.append((sid, type(exc).__name__))
                    continue
                if 200 <= status < 300:
                    self.acked.append(sid)
                else:
                    self.refused.append((sid, str(status)))


def test_an_event_no_replica_confirmed_is_spooled_until_one_does(
    start_node: Callable[[str, list[str]], Node], start_receiver: Any, tmp_path: Path
) -> None:
    master = start_node("master", _data_node(tmp_path / "master"))  # takes writes with no replica
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{master.port}/0", redis_wait_replicas=1, spool_after_seconds=0.3,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, data_dir=tmp_path / "data", log_format="json",
    )
    receiver: Receiver = start_receiver(settings)
    sids = [new_sid("RE") for _ in range(5)]
    for sid in sids:
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "completed", sid)).status_code == 204
    # Some did land on the master, but no replica confirmed any: every one is answered from the spool.
    assert httpx.get(f"{receiver.base_url}/readyz", timeout=5).json()["spool"] == len(sids)

    replica = start_node("replica", _data_node(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port)))
    wait_for(lambda: httpx.get(f"{receiver.base_url}/readyz", timeout=5).json()["spool"] == 0, timeout=15, what="the spool to drain")
    # Delivered once each: the copy that had landed unconfirmed is a duplicate in the ledger.
    # (Arrival order is kept within the spool, not between it and the live path, which resumes
    # as soon as Redis answers a ping; the catalog does not need arrival order.)
    assert sorted(queued_sids(master)) == sorted(sids)
    wait_for(lambda: sorted(queued_sids(replica)) == sorted(sids), timeout=5, what="the replica to hold them")


@pytest.mark.slow
def test_failover_under_load_loses_nothing_acknowledged(cluster: Cluster, tmp_path: Path) -> None:
    """SENTINEL FAILOVER while a thread sends callbacks back to back: every 2xx is one job on the new master.

    Sentinel promotes the replica at once but demotes the old master only ~10 s later. Without
    protection the old master acknowledges writes all that time that its resync then discards
    (thousands lost in one run). REDIS_WAIT_REPLICAS=1 is what makes the guarantee: the receiver
    answers 2xx from Redis only once the replica holds the event, else from its spool, so even
    a write taken in the instant before promotion and not yet applied by the replica is safe
    (with min-replicas-to-write alone, 3 of 11 runs lost one such event). min-replicas-to-write
    makes the old master refuse writes quickly instead of taking them unconfirmed. Between
    promotion and demotion neither node takes writes; the receiver spools.
    """
    sock = listening_socket()
    settings = cluster.settings(tmp_path, spool_after_seconds=0.5, public_base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = create_app(settings)
    # Count how each event was taken (queued in Redis, or spooled while Redis could not take it).
    delivery = app.state.deps.delivery
    outcomes: Counter[str] = Counter()
    original = delivery.deliver

    async def counting(event: Any) -> Delivered:
        result = await original(event)
        outcomes[result.outcome] += 1
        return result

    delivery.deliver = counting
    with serve_app(app, sock=sock) as base:
        load = Load(Receiver(base, settings))
        sender = threading.Thread(target=load.run, daemon=True)
        sender.start()
        try:
            wait_for_count(lambda: len(load.acked), 200, what="callbacks acknowledged by the old master")
            old, new = cluster.master, cluster.replica
            assert cluster.master_port() == old.port
            assert cluster.sentinel.client().execute_command("SENTINEL", "FAILOVER", MASTER)
            wait_for(lambda: cluster.master_port() == new.port, timeout=15, what="sentinel to promote the replica")
            # Sentinel turns the old master into a replica of the new one (and kills its clients,
            # so they ask Sentinel again); until then both refuse writes and the receiver spools.
            wait_for(lambda: old.role() == "slave", timeout=25, what="the old master to follow the new one")
            mark = len(load.acked)
            wait_for_count(lambda: len(load.acked), mark + 101, what="callbacks acknowledged after the switch")
            wait_for(lambda: load.acked[mark + 50] in queued_sids(new), timeout=15,
                     what="callbacks sent after the switch to reach the new master")
        finally:
            load.stop.set()
            sender.join(timeout=15)
        # With the sender stopped, an empty spool means every acknowledged event is wherever it will be.
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json()["spool"] == 0, timeout=20, what="the spool to empty")

    queued = Counter(queued_sids(new))
    assert load.refused == []
    missing = [sid for sid in load.acked if sid not in queued]
    assert missing == [], f"{len(missing)} acknowledged callbacks lost in the failover"
    assert [sid for sid, n in queued.items() if n != 1] == []
    assert set(queued) == set(load.acked)
    # The switch really happened under load: events went straight in before and after it, and to the spool during it.
    assert outcomes["spooled"] > 0 and outcomes["queued"] > 0
    assert outcomes["spooled"] + outcomes["queued"] == len(load.acked)
