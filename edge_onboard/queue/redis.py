"""Redis queue: a due-time ZSET, an in-flight ZSET of leases, Lua for atomic moves."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from edge_onboard import redis_keys as keys

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Move up to ARGV[2] members due by ARGV[1] from DUE to INFLIGHT, leased until ARGV[3].
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
# Lease gone: back to DUE, due at once (ARGV[1] = now).
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


def client_from_url(url: str, *, max_connections: int) -> Redis:
    """A client on a blocking pool (under load it waits for a connection instead of
    failing) that retries a command on a fresh connection after Redis restarted."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5.0,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
    )
    return Redis.from_pool(pool)  # the client owns the pool and closes it with itself


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class RedisQueue:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._claim = client.register_script(_CLAIM)
        self._enqueue = client.register_script(_ENQUEUE)
        self._sweep = client.register_script(_SWEEP)
        self._retry = client.register_script(_RETRY)
        self._keys = [keys.DUE, keys.INFLIGHT]

    @classmethod
    def from_url(cls, url: str) -> RedisQueue:
        return cls(client_from_url(url, max_connections=32))

    async def enqueue(self, delivery_id: str, due: datetime) -> None:
        await self._enqueue(keys=self._keys, args=[_ms(due), delivery_id])

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[str]:
        ids: list[Any] = await self._claim(
            keys=self._keys, args=[_ms(now), limit, _ms(now + lease)]
        )
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def ack(self, delivery_id: str) -> None:
        await self.client.zrem(keys.INFLIGHT, delivery_id)

    async def retry(self, delivery_id: str, due: datetime) -> None:
        await self._retry(keys=self._keys, args=[_ms(due), delivery_id])

    async def sweep(self, now: datetime) -> int:
        token = secrets.token_hex(8)
        if not await self.client.set(keys.SWEEP_LOCK, token, nx=True, ex=keys.SWEEP_LOCK_TTL):
            return 0  # another worker is sweeping
        try:
            moved: int = await self._sweep(keys=self._keys, args=[_ms(now)])
            return moved
        finally:
            if await self.client.get(keys.SWEEP_LOCK) == token.encode():
                await self.client.delete(keys.SWEEP_LOCK)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
