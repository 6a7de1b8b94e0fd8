"""Every Redis key and TTL the service uses. The ``{edge}`` hash tag keeps them in one
Redis Cluster slot, so the multi-key scripts below run on a cluster unchanged."""

from __future__ import annotations

# ZSET delivery id → due time (ms since epoch): scheduled deliveries.
DUE = "{edge}:deliveries:due"
# ZSET delivery id → lease expiry (ms): deliveries a worker is sending right now.
INFLIGHT = "{edge}:deliveries:inflight"
# String lock so only one worker sweeps expired leases at a time.
SWEEP_LOCK = "{edge}:deliveries:sweep-lock"
# Seconds the sweep lock is held at most (a worker that dies holding it frees it then).
SWEEP_LOCK_TTL = 10
