"""Every Redis key and TTL the service uses.

On Redis Cluster a key's slot (and so its shard) comes from its ``{hash tag}``, or from
the whole name when it has none. Hot copies and rate-limit budgets carry no tag, so they
spread over every shard. The delivery queue is split into ``PARTITIONS`` partitions,
each with its own tag: a partition's keys share one slot, so its multi-key Lua scripts
run on one shard, and the partitions spread over the shards.
"""

from __future__ import annotations

import zlib

# Partitions of the delivery queue. Fixed: a delivery's partition is a hash of its id,
# so changing this would strand queued ones (recovery from storage re-queues them).
PARTITIONS = 32


def partition(delivery_id: str) -> int:
    """The queue partition a delivery lives in, the same in every process."""
    return zlib.crc32(delivery_id.encode()) % PARTITIONS


def _tag(part: int) -> str:
    return f"{{edge:deliveries:{part}}}"


def due(part: int) -> str:
    """ZSET delivery id → due time (ms since epoch): a partition's scheduled deliveries."""
    return f"{_tag(part)}:due"


def inflight(part: int) -> str:
    """ZSET delivery id → lease expiry (ms): a partition's deliveries being sent now."""
    return f"{_tag(part)}:inflight"


# LIST holding at most one token, pushed whenever deliveries are queued due now: a worker
# waiting for work pops it (BLPOP) and claims at once instead of at its next poll.
DELIVERY_WAKE = "edge:deliveries:wake"
# ZSET of the one-slot queue older versions kept: the first sweep moves it into partitions.
LEGACY_DUE = "{edge}:deliveries:due"
# ZSET of that queue's leases: moved into the partitions with it, expiries kept.
LEGACY_INFLIGHT = "{edge}:deliveries:inflight"


def hot(kind: str, key: str) -> str:
    """The hot layer's copy of a record (edge_onboard/core/hot.py): JSON, expires after HOT_TTL;
    or a tombstone, for HOT_TOMBSTONE_MS after the record changed."""
    return f"edge:hot:{kind}:{key}"


# Seconds a hot-layer copy lives. Changes replace it with a tombstone at once; this
# bounds staleness only when a change happened while Redis was unreachable (or, during
# the upgrade from the one-slot key names, when a process still on them made it).
HOT_TTL = 5
# Milliseconds a tombstone keeps copies read from the store before a change from being
# cached: longer than any store read takes.
HOT_TOMBSTONE_MS = 2000


def rate_limit(key: str) -> str:
    """A rate-limit budget (edge_onboard/core/ratelimit.py): its GCRA arrival time, in ms."""
    return f"edge:ratelimit:{key}"


# The reconciliation pass's lock (edge_onboard/onboarding/recovery.py): one process at a time runs
# it; the lock lapses after RECONCILE_LOCK_MS if its holder dies.
RECONCILE_LOCK = "edge:reconcile:lock"
RECONCILE_LOCK_MS = 60_000


def sandbox(kind: str, key: str) -> str:
    """The built-in fake Meta's state shared by every process (meta/sandbox/sharing.py):
    ``waba`` (JSON: a WABA with its numbers), ``phone``/``business`` (the WABA id they
    belong to), ``token`` (JSON: the WABA ids it grants), ``code`` (JSON: its token and
    whether it was used; expires with the code). Tokens and codes are named by their
    SHA-256, never as themselves."""
    return f"edge:sandbox:{kind}:{key}"


# Seconds the fake Meta keeps a test-mode WABA, number or token after its last change.
SANDBOX_TTL = 30 * 86400

# STRING: the primary region's clock (ms since epoch), rewritten every REGION_BEAT_INTERVAL
# seconds; a region's Redis replica reads it to tell how far behind it is.
REGION_BEAT = "edge:region:beat"
REGION_BEAT_INTERVAL = 1.0
# Seconds the heartbeat outlives its last write (a stopped primary region shows as no beat).
REGION_BEAT_TTL = 60
