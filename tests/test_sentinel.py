"""Redis behind Sentinel: the receiver and workers find the master, and a failover under load loses nothing acknowledged."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from receiver.app import create_app
from receiver.delivery import Delivered
from receiver.settings import Settings
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.servers import free_port, serve_app, wait_for
from tests.twilio_signing import sign
from tests.test_voice_pipeline import callback
from workers import embedded_redis
from workers.catalog import Catalog
from workers.simulate import new_sid, voice_params

MASTER = "mymaster"
# A master takes a write only while a replica is attached: once Sentinel promotes the replica
# (which drops its link), the old master refuses writes instead of acknowledging events that
# the promoted one never sees and that the old master's resync would then throw away.
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
        )
        values.update(overrides)
        return Settings(**values)

    def master_port(self) -> int:
        _, port = self.sentinel.client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)


def _data_node(directory: Path, *extra: str) -> list[str]:
    return [*embedded_redis.redis_args(directory, 0)[2:], *SAFE_WRITES, *extra]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Master, one replica and one sentinel (quorum 1) on loopback; skipped when Sentinel cannot run."""
    nodes: list[Node] = []
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: [node.stop() for node in nodes])
        master = Node.start(tmp_path / "master", _data_node(tmp_path / "master"))
        nodes.append(master)
        replica = Node.start(tmp_path / "replica", _data_node(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port)))
        nodes.append(replica)
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
            sentinel = Node.start(conf.parent, [str(conf), "--sentinel"])
        except (AssertionError, OSError) as exc:
            pytest.skip(f"{embedded_redis.find_binary()} cannot run as a Redis Sentinel: {exc}")
        nodes.append(sentinel)
        if sentinel.proc.poll() is not None:
            pytest.skip(f"{embedded_redis.find_binary()} --sentinel exited with {sentinel.proc.returncode}")
        wait_for(
            lambda: int(sentinel.client().sentinel_master(MASTER)["num-slaves"]) >= 1, timeout=15,
            what="the sentinel to discover the replica",
        )
        yield Cluster(master, replica, sentinel)


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


@pytest.mark.slow
def test_failover_under_load_loses_nothing_acknowledged(cluster: Cluster, tmp_path: Path) -> None:
    port = free_port()
    settings = cluster.settings(tmp_path, spool_after_seconds=0.5, public_base_url=f"http://127.0.0.1:{port}")
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
    with serve_app(app, port=port) as base:
        load = Load(Receiver(base, settings))
        sender = threading.Thread(target=load.run, daemon=True)
        sender.start()
        try:
            wait_for(lambda: len(load.acked) >= 200, timeout=10, what="load on the old master")
            old, new = cluster.master, cluster.replica
            assert cluster.master_port() == old.port
            assert cluster.sentinel.client().execute_command("SENTINEL", "FAILOVER", MASTER)
            wait_for(lambda: cluster.master_port() == new.port, timeout=15, what="sentinel to promote the replica")
            # Sentinel turns the old master into a replica of the new one (and kills its clients,
            # so they ask Sentinel again); until then both refuse writes and the receiver spools.
            wait_for(lambda: old.role() == "slave", timeout=25, what="the old master to follow the new one")
            mark = len(load.acked)
            wait_for(lambda: len(load.acked) > mark + 100 and load.acked[mark + 50] in queued_sids(new),
                     timeout=15, what="callbacks sent after the switch to reach the new master")
        finally:
            load.stop.set()
            sender.join(timeout=15)
        wait_for(lambda: set(load.acked) <= set(queued_sids(new)), timeout=15, what="every acknowledged callback on the new master")
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json()["spool"] == 0, timeout=10, what="the spool to empty")

    queued = Counter(queued_sids(new))
    assert load.refused == []
    missing = [sid for sid in load.acked if sid not in queued]
    assert missing == [], f"{len(missing)} acknowledged callbacks lost in the failover"
    assert [sid for sid, n in queued.items() if n != 1] == []
    assert set(queued) == set(load.acked)
    # The switch really happened under load: some events were spooled, most went straight in.
    assert outcomes["spooled"] > 0 and outcomes["queued"] > 0
    assert outcomes["spooled"] + outcomes["queued"] == len(load.acked)
