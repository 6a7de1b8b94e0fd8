"""Redis queue, on one Redis or on a Redis Cluster, in ``PARTITIONS`` partitions.

Each partition is a due-time ZSET and an in-flight ZSET of leases under one hash tag
(edge_onboard/core/redis_keys.py), moved between by Lua: on a cluster a partition lives on one
shard, and the partitions spread over the shards. A delivery belongs to the partition
its id hashes to, so enqueue, ack and retry touch one partition.

A claim shares its limit fairly among the partitions. One pipelined round trip counts
what is due in each; every partition with due deliveries then gets an equal share, a
partition with fewer than its share leaves the rest to the others, and the odd units go
round the partitions from a point that moves on with every claim and starts at random in
each worker; a second round trip claims the shares (each partition oldest first). So a
backlog in one partition never starves another, and workers claiming at the same moment
start on different partitions rather than all on the same one.

Pipelined scripts are sent as EVAL, the script's text (Redis caches it by its hash):
redis-py's cluster pipeline refuses EVALSHA. Scripts run on their own go as EVALSHA.
``enqueue_many`` and ``ack_many`` pipeline what many deliveries need (a fan-out, a
recovery chunk, the acks of deliveries finishing together): one round trip.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from edge_onboard.core import redis_keys as keys

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# URL schemes that name a Redis Cluster, and the plain scheme redis-py reads them as.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# redis-py's cluster client cannot wait for a free connection to a node (past its cap it
# fails the command), so its cap per node is this many times the single client's pool.
CLUSTER_CONNECTIONS_FACTOR = 4
# Seconds ``open_client`` waits for a plain URL's server to say whether it is a cluster.
CLUSTER_PROBE_TIMEOUT = 2.0

# KEYS: a partition's DUE, INFLIGHT. Move up to ARGV[2] members due by ARGV[1] from DUE to
# INFLIGHT, leased until ARGV[3].
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
end
return ids
"""
# Schedule unless leased.
_ENQUEUE = """
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# Lease gone: back to DUE, due at once (ARGV[1] = now). Atomic per partition, so workers
# sweeping the same partition at once move each lapsed lease once (the later finds none):
# no lock is needed.
_SWEEP = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
return #ids
"""
_RETRY = """
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# A lease taken over from the one-slot queue: leased until ARGV[1], no longer due.
_LEASE = """
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
_ADOPT_BATCH = 500


def client_from_url(url: str, *, max_connections: int) -> Redis | RedisCluster:
    """The client for ``redis://``, ``rediss://`` or ``unix://`` (one Redis) or for
    ``redis+cluster://`` / ``rediss+cluster://`` (nodes of a Redis Cluster: one or
    several comma-separated seeds, ``host1:7000,host2:7000``, tried in turn)."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        userinfo, at, hosts = parts.netloc.rpartition("@")
        first, *others = hosts.split(",")
        plain = urlunsplit(
            parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme], netloc=userinfo + at + first)
        )
        return _cluster_client(plain, max_connections, [_seed(host) for host in others])
    # A blocking pool: under load a command waits for a connection instead of failing;
    # a command is retried on a fresh connection after Redis restarted.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5.0,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
    )
    return Redis.from_pool(pool)  # the client owns the pool and closes it with itself


def _seed(host: str) -> ClusterNode:
    """``host[:port]`` (an IPv6 address in brackets) as a cluster seed node."""
    where = urlsplit(f"//{host}")
    if not where.hostname:
        raise ValueError(f"not a host: {host!r}")
    return ClusterNode(where.hostname, where.port or 6379)


def _cluster_client(
    url: str, max_connections: int, seeds: list[ClusterNode] | None = None
) -> RedisCluster:
    # redis-py follows MOVED/ASK itself, and on a lost node or CLUSTERDOWN (a failover)
    # reloads the slot map and retries: three times, with jittered backoff. At start it
    # asks the seeds in turn (the URL's others, then its first) until one answers.
    return RedisCluster.from_url(
        url,
        startup_nodes=seeds or None,
        max_connections=max_connections * CLUSTER_CONNECTIONS_FACTOR,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), 3),
    )


async def open_client(url: str, *, max_connections: int) -> Redis | RedisCluster:
    """``client_from_url``, except that a plain URL naming a node of a Redis Cluster
    (``cluster_enabled:1`` in its INFO) gets the cluster client. A server that does not
    answer yet keeps the plain client: its commands fail until it does, and whoever
    uses them reports that."""
    client = client_from_url(url, max_connections=max_connections)
    if isinstance(client, RedisCluster):
        return client
    info: dict[str, Any] = {}
    try:
        with anyio.move_on_after(CLUSTER_PROBE_TIMEOUT):
            info = await client.info("cluster")
    except (RedisError, OSError):
        return client
    except BaseException:  # cancelled (a start-up deadline): the client is not handed out
        with anyio.CancelScope(shield=True):
            await client.aclose()
        raise
    if not info.get("cluster_enabled"):
        return client
    await client.aclose()
    return _cluster_client(url, max_connections)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def shares(due: Sequence[int], limit: int, start: int) -> list[int]:
    """How many of ``limit`` to claim from each partition, given how many are ``due`` in
    each: equal shares (max-min fair), the odd units going round from ``start``."""
    take = [0] * len(due)
    order = [(start + i) % len(due) for i in range(len(due))]
    open_ = [part for part in order if due[part] > 0]
    left = limit
    while left > 0 and open_:
        each = max(1, left // len(open_))
        for part in list(open_):
            add = min(each, due[part] - take[part], left)
            take[part] += add
            left -= add
            if take[part] == due[part]:
                open_.remove(part)
            if left == 0:
                break
    return take


class RedisQueue:
    def __init__(self, client: Redis | RedisCluster) -> None:
        self.client = client
        self._retry = client.register_script(_RETRY)
        # Where the odd units of the next claim start: random per worker, then rotating.
        self._start = random.randrange(keys.PARTITIONS)
        self._adopted = False

    @classmethod
    def from_url(cls, url: str) -> RedisQueue:
        return cls(client_from_url(url, max_connections=32))

    @staticmethod
    def _keys(part: int) -> list[str]:
        return [keys.due(part), keys.inflight(part)]

    async def enqueue(self, delivery_id: str, due: datetime) -> None:
        await self.enqueue_many([(delivery_id, due)])

    async def enqueue_many(self, items: Sequence[tuple[str, datetime]]) -> None:
        if not items:
            return
        enqueuing = self.client.pipeline(transaction=False)
        for delivery_id, due in items:
            part = keys.partition(delivery_id)
            enqueuing.eval(_ENQUEUE, 2, *self._keys(part), _ms(due), delivery_id)
        # One token, however many are queued: a waiting worker claims now.
        enqueuing.lpush(keys.DELIVERY_WAKE, 1)
        enqueuing.ltrim(keys.DELIVERY_WAKE, 0, 0)
        await enqueuing.execute()

    async def wait_for_work(self, timeout: float) -> bool:
        return await self.client.blpop([keys.DELIVERY_WAKE], timeout=timeout) is not None

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[str]:
        if limit <= 0:
            return []
        # Read-only: if a partition cannot be counted, this raises having claimed nothing.
        counting = self.client.pipeline(transaction=False)
        for part in range(keys.PARTITIONS):
            counting.zcount(keys.due(part), "-inf", _ms(now))
        due = [int(n) for n in await counting.execute()]
        start, self._start = self._start, (self._start + 1) % keys.PARTITIONS
        take = shares(due, limit, start)
        parts = [part for part in range(keys.PARTITIONS) if take[part]]
        if not parts:
            return []
        claiming = self.client.pipeline(transaction=False)
        for part in parts:
            claiming.eval(_CLAIM, 2, *self._keys(part), _ms(now), take[part], _ms(now + lease))
        results = await claiming.execute(raise_on_error=False)
        claimed = [_text(i) for ids in results if not isinstance(ids, Exception) for i in ids]
        errors = [result for result in results if isinstance(result, Exception)]
        if errors and not claimed:
            raise errors[0]
        # Some partitions claimed, one failed (a shard lost since the count): what was
        # claimed is worked on; a shard still down fails the next count, and so shows.
        return claimed

    async def ack(self, delivery_id: str) -> None:
        await self.client.zrem(keys.inflight(keys.partition(delivery_id)), delivery_id)

    async def ack_many(self, delivery_ids: Sequence[str]) -> None:
        by_partition: dict[int, list[str]] = {}
        for delivery_id in delivery_ids:
            by_partition.setdefault(keys.partition(delivery_id), []).append(delivery_id)
        if len(by_partition) == 1:
            ((part, ids),) = by_partition.items()
            await self.client.zrem(keys.inflight(part), *ids)
            return
        acking = self.client.pipeline(transaction=False)
        for part, ids in by_partition.items():
            acking.zrem(keys.inflight(part), *ids)
        await acking.execute()

    async def retry(self, delivery_id: str, due: datetime) -> None:
        await self._retry(
            keys=self._keys(keys.partition(delivery_id)), args=[_ms(due), delivery_id]
        )

    async def sweep(self, now: datetime) -> int:
        if not self._adopted:
            await self._adopt_one_slot_queue()
            self._adopted = True
        sweeping = self.client.pipeline(transaction=False)
        for part in range(keys.PARTITIONS):
            sweeping.eval(_SWEEP, 2, *self._keys(part), _ms(now))
        return sum(int(moved) for moved in await sweeping.execute())

    async def _adopt_one_slot_queue(self) -> None:
        """Move what the queue before partitions left (one slot, ``{edge}``) into the
        partitions: due times and leases kept. Popped in batches, then written: a crash
        in between loses queue entries only, which recovery re-queues from storage."""
        for legacy, script in ((keys.LEGACY_DUE, _ENQUEUE), (keys.LEGACY_INFLIGHT, _LEASE)):
            while True:
                batch: list[Any] = await self.client.zpopmin(legacy, _ADOPT_BATCH)
                if not batch:
                    break
                adopting = self.client.pipeline(transaction=False)
                for member, score in batch:
                    ident = _text(member)
                    adopting.eval(script, 2, *self._keys(keys.partition(ident)), int(score), ident)
                await adopting.execute()

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
