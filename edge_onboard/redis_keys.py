"""Every Redis key and TTL the service uses. The ``{edge}`` hash tag keeps them in one
Redis Cluster slot, so the multi-key scripts of the queue run on a cluster unchanged."""

from __future__ import annotations

# ZSET delivery id → due time (ms since epoch): scheduled deliveries.
DUE = "{edge}:deliveries:due"
# ZSET delivery id → lease expiry (ms): deliveries a worker is sending right now.
INFLIGHT = "{edge}:deliveries:inflight"
# String lock so only one worker sweeps expired leases at a time.
SWEEP_LOCK = "{edge}:deliveries:sweep-lock"
# Seconds the sweep lock is held at most (a worker that dies holding it frees it then).
SWEEP_LOCK_TTL = 10


def hot(kind: str, key: str) -> str:
    """The hot layer's copy of a record (edge_onboard/hot.py): JSON, expires after HOT_TTL;
    or a tombstone, for HOT_TOMBSTONE_MS after the record changed."""
    return f"{{edge}}:hot:{kind}:{key}"


# Seconds a hot-layer copy lives. Changes replace it with a tombstone at once; this
# bounds staleness only when a change happened while Redis was unreachable.
HOT_TTL = 5
# Milliseconds a tombstone keeps copies read from the store before a change from being
# cached: longer than any store read takes.
HOT_TOMBSTONE_MS = 2000


def rate_limit(key: str) -> str:
    """A rate-limit budget (edge_onboard/ratelimit.py): its GCRA arrival time, in ms."""
    return f"{{edge}}:ratelimit:{key}"
