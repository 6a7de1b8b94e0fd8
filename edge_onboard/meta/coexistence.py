"""How a coexistence number's one-shot syncs are going, kept on the phone.

Connecting a WhatsApp Business app number starts both syncs once (``requested``, or
``failed``/``unknown`` when Meta refused or did not answer). Meta then posts the results:
``smb_app_state_sync`` (the app's contacts: ``stateSync`` becomes ``done``) and
``history`` in chunks (``historySync`` becomes ``in_progress`` with ``historyProgress``,
Meta's percentage, then ``done`` at 100), or the business's refusal (``declined``).

Chunks arrive concurrently and out of order, and Meta retries them: a state only moves
forward (progress never falls back). Within a process, a phone's updates are serialised
(read, merge, write under one lock), so concurrent chunks cannot undo each other. Two
processes writing the same phone in the same few milliseconds can still leave the smaller
of their two progresses until the next chunk; the events themselves are all kept.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import anyio

from edge_onboard.meta.message_model import Found
from edge_onboard.storage import Phone, Storage

_RANK = {"requested": 1, "unknown": 1, "failed": 1, "in_progress": 2, "done": 3, "declined": 3}


def wanted(events: Sequence[Found]) -> dict[str, Any]:
    """What ``events`` say of the syncs (empty: nothing)."""
    state: dict[str, Any] = {}
    for _, event_type, _, data in events:
        if event_type == "contact.synced":
            state["stateSync"] = "done"
        elif event_type == "history.declined":
            state["historySync"] = "declined"
        elif event_type == "history.received" and data.get("progress") is not None:
            progress = max(0, min(100, int(data["progress"])))
            if progress >= state.get("historyProgress", -1):
                state["historyProgress"] = progress
            state["historySync"] = "done" if state["historyProgress"] >= 100 else "in_progress"
    return state


def merged(current: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``current`` moved forward by ``new``; never back."""
    result = dict(current or {})
    for key in ("stateSync", "historySync"):
        if key in new and _RANK.get(new[key], 0) > _RANK.get(result.get(key, ""), 0):
            result[key] = new[key]
    progress = new.get("historyProgress")
    if progress is not None and progress > result.get("historyProgress", -1):
        result["historyProgress"] = progress
    if result.get("historySync") == "in_progress" and result.get("historyProgress", 0) >= 100:
        result["historySync"] = "done"
    return result


class SyncState:
    """Keeps each phone's ``coexistence`` up to date with what Meta reported."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

    async def record(self, phone: Phone, events: Sequence[Found]) -> None:
        new = wanted(events)
        if not new:
            return
        lock = self._locks.get(phone.id)
        if lock is None:
            lock = self._locks[phone.id] = anyio.Lock()
        async with lock:
            current = await self.storage.get_phone(phone.id)
            if current is None:
                return
            target = merged(current.coexistence, new)
            if target != (current.coexistence or {}):
                await self.storage.update_phone(phone.id, {"coexistence": target})
