"""On a real Redis Cluster (3 masters, 3 replicas): the client is chosen from the URL or
the server, keys spread over the shards, /readyz sees a delivery loop that cannot use
Redis, and `edge-onboard worker`s deliver every event through a master's failover.

The queue contract, the hot layer and rate limits run on the cluster too: their suites
(tests/test_queue.py, tests/test_hot.py, tests/test_ratelimit.py) take it as a parameter.
"""

from __future__ import annotations

import collections
import contextlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from standardwebhooks import Webhook

from edge_onboard.core import redis_keys as keys
from edge_onboard.startup import open_redis
from edge_onboard.storage.memory import MemoryStorage
from edge_onboard.webhooks.queue.redis import RedisQueue, client_from_url, open_client
from tests import services
from tests.conftest import FakeClock, make_settings, running_app
from tests.live import free_port
from tests.webhooks.test_delivery_processes import (
    SECRET,
    emit_events,
    pending,
    receiver,
    start_worker,
)

pytestmark = pytest.mark.redis
EVENTS = 300


@pytest.mark.anyio
async def test_the_client_comes_from_the_url_or_the_server(redis_cluster_url: str) -> None:
    node = redis_cluster_url.replace("redis+cluster://", "redis://")
    for url in (redis_cluster_url, node):  # named a cluster, or found to be one
        client = await open_redis(make_settings(EDGE_REDIS_URL=url))
        assert isinstance(client, RedisCluster), url
        await client.aclose()
    # Nothing answers there: the single-server client, whose commands then fail.
    single = await open_client("redis://127.0.0.1:1/0", max_connections=1)
    assert isinstance(single, Redis)
    await single.aclose()


def test_a_cluster_url_takes_several_seed_nodes() -> None:
    client = client_from_url(
        "rediss+cluster://user:pw@10.0.0.1:7000,[::1]:7001,node-3.example/0",
        max_connections=1,
    )
    assert isinstance(client, RedisCluster)
    seeds = {(node.host, node.port) for node in client.startup_nodes}
    assert seeds == {("10.0.0.1", 7000), ("::1", 7001), ("node-3.example", 6379)}
    assert all(node.connection_kwargs.get("password") == "pw" for node in client.startup_nodes)


@pytest.mark.anyio
async def test_a_process_starts_when_the_first_seed_is_dead(redis_cluster_url: str) -> None:
    """The master named first died: a restarted process reaches the cluster through the
    other seeds."""
    dead = f"127.0.0.1:{free_port()}"
    live = redis_cluster_url.removeprefix("redis+cluster://")
    client = await open_redis(make_settings(EDGE_REDIS_URL=f"redis+cluster://{dead},{live}"))
    try:
        assert isinstance(client, RedisCluster)
        await client.set("edge:test:seeds", b"1", ex=10)
        assert await client.get("edge:test:seeds") == b"1"
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_partitions_and_keys_spread_over_every_master(redis_cluster_url: str) -> None:
    client = client_from_url(redis_cluster_url, max_connections=4)
    assert isinstance(client, RedisCluster)
    await client.initialize()

    def shards(names: list[str]) -> collections.Counter[str]:
        nodes = [client.get_node_from_key(name) for name in names]
        return collections.Counter(node.name if node else "none" for node in nodes)

    partitions = shards([keys.due(part) for part in range(keys.PARTITIONS)])
    hot = shards([keys.hot("link", f"{n:08x}") for n in range(300)])
    limits = shards([keys.rate_limit(f"ip:10.0.{n // 256}.{n % 256}") for n in range(300)])
    assert len(partitions) == len(hot) == len(limits) == 3
    # The partitions over three equal slot ranges: none holds more than half of them.
    assert max(partitions.values()) <= keys.PARTITIONS // 2
    assert min(hot.values()) > 50 and min(limits.values()) > 50
    await client.aclose()


@pytest.mark.anyio
async def test_readyz_fails_while_the_delivery_loop_cannot_use_redis(
    redis_cluster_url: str, clock: FakeClock
) -> None:
    """The single-server client on a cluster node answers PING, but most queue keys live
    on other shards (MOVED): the loop fails round after round, and /readyz says so."""
    plain = Redis.from_url(redis_cluster_url.replace("redis+cluster://", "redis://"))
    cluster = client_from_url(redis_cluster_url, max_connections=8)
    async with running_app(MemoryStorage(), clock, redis=plain, deliver=True) as app:
        engine = app.services.engine
        await _until(lambda: engine.loop_error is not None)
        ready = await app.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["redis"] == "ok" and checks["delivery"].startswith("error: ")
        engine.queue = RedisQueue(cluster)  # the queue on the cluster client: it works
        await _until(lambda: engine.loop_error is None)
        ready = await app.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"storage": "ok", "redis": "ok"}
    await plain.aclose()
    await cluster.aclose()


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


@contextlib.contextmanager
def private_cluster() -> Iterator[services.RedisClusterNodes]:
    """A cluster of this test's own: it kills a node."""
    try:
        with services.redis_cluster(private=True) as cluster:
            yield cluster
    except services.ServiceUnavailable as exc:
        services.unavailable(f"test service missing: {exc}")


class Progress:
    """Samples a growing count; the longest time it stood still between its first and
    its last growth is the gap a receiver saw."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count
        self.last, self.changed_at = 0, 0.0
        self.longest_gap = 0.0

    def sample(self) -> int:
        now, value = time.monotonic(), self.count()
        if value != self.last:
            if self.last:
                self.longest_gap = max(self.longest_gap, now - self.changed_at)
            self.last, self.changed_at = value, now
        return value

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.sample()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)


def busiest_master(cluster: services.RedisClusterNodes) -> int:
    """The master serving the most queue partitions."""
    owners = collections.Counter(
        cluster.master_of(key_slot(keys.due(part).encode())) for part in range(keys.PARTITIONS)
    )
    return owners.most_common(1)[0][0]


def test_workers_deliver_every_event_through_a_master_failover(tmp_path: Path) -> None:
    """300 events, two `edge-onboard worker` processes on the cluster, a receiver that
    refuses 20 % of requests, and the master holding the most queue partitions killed
    (SIGKILL) a third of the way in: its replica takes over, and every event arrives."""
    db = tmp_path / "edge.db"
    with private_cluster() as cluster, receiver(failure_rate=0.2) as (url, received):
        anyio.run(emit_events, db, cluster.url, url, EVENTS)
        env = {
            "EDGE_STORAGE_URL": f"sqlite:///{db}",
            "EDGE_REDIS_URL": cluster.url,
            "EDGE_SECRET_KEY": SECRET * 2,
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            "EDGE_DELIVERY_SCHEDULE": "0,0.1,0.2,0.3,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
            "EDGE_DELIVERY_LEASE": "2",
        }
        log = (tmp_path / "workers.log").open("ab")
        workers = [start_worker(env, log), start_worker(env, log)]
        progress = Progress(lambda: len(received.requests))
        started = time.monotonic()
        try:
            progress.wait(lambda: progress.sample() >= EVENTS // 3, 60, "the first deliveries")
            victim = busiest_master(cluster)
            cluster.kill(victim)
            failover = cluster.wait_for_failover(victim)
            assert victim not in cluster.masters()  # a replica serves its slots now
            checked = 0.0
            deadline = time.monotonic() + 90

            def all_done() -> bool:
                nonlocal checked
                if time.monotonic() - checked < 0.25:
                    return False
                checked = time.monotonic()
                return anyio.run(pending, db) == 0

            progress.wait(all_done, deadline - time.monotonic(), "every delivery")
            took = time.monotonic() - started
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            log.close()
        assert [w.returncode for w in workers] == [0, 0]  # graceful on SIGTERM

    by_id: dict[str, set[bytes]] = {}
    delivered: set[str] = set()
    numbers: set[int] = set()
    verifier = Webhook(SECRET.encode())
    for webhook_id, body, headers, status in received.requests:
        by_id.setdefault(webhook_id, set()).add(body)
        verifier.verify(body, headers)
        numbers.add(orjson.loads(body)["data"]["n"])
        if status == 200:
            delivered.add(webhook_id)
    assert len(by_id) == EVENTS and numbers == set(range(EVENTS))  # none invented
    assert delivered == set(by_id)  # none lost: each one reached the receiver with a 2xx
    assert all(len(bodies) == 1 for bodies in by_id.values())  # retries resend the same
    refused = sum(1 for *_, status in received.requests if status != 200)
    print(
        f"\n{EVENTS} events delivered, 0 invented, {len(received.requests)} requests "
        f"({refused} refused by the receiver) in {took:.1f} s; master failover "
        f"{failover:.1f} s; longest gap between requests {progress.longest_gap:.1f} s"
    )
