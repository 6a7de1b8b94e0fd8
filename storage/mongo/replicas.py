"""MongoDB as a region other than the primary reads it: the nearest member, within a
bounded staleness, and how stale that member is now."""

from __future__ import annotations

from typing import Any

from pymongo.server_type import SERVER_TYPE
from pymongo.topology_description import TopologyDescription


def region_reads(url: str, max_staleness: int | None) -> dict[str, Any]:
    """Client options: reads from the nearest member no more than ``max_staleness``
    seconds behind the primary (MongoDB's floor is 90), unless the URL chooses a read
    preference itself. Nothing without ``max_staleness`` (the primary region)."""
    if max_staleness is None or "readpreference=" in url.partition("?")[2].lower():
        return {}
    return {"readPreference": "nearest", "maxStalenessSeconds": max_staleness}


def replica_staleness(topology: TopologyDescription) -> float | None:
    """Seconds the nearest secondary lags the primary, estimated as the driver does for
    ``maxStalenessSeconds`` (the server selection spec): each member's last write as of
    its last heartbeat, compared with the primary's. None without a known primary and
    secondary."""
    servers = topology.server_descriptions().values()
    primary = next((s for s in servers if s.server_type == SERVER_TYPE.RSPrimary), None)
    secondaries = [
        s
        for s in servers
        if s.server_type == SERVER_TYPE.RSSecondary
        and s.round_trip_time is not None
        and s.last_write_date is not None
    ]
    if primary is None or primary.last_write_date is None or not secondaries:
        return None
    nearest = min(secondaries, key=lambda s: s.round_trip_time or 0.0)
    assert nearest.last_write_date is not None
    lag = (nearest.last_update_time - nearest.last_write_date) - (
        primary.last_update_time - primary.last_write_date
    )
    return max(0.0, lag)
