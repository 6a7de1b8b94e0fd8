"""Admission at the door: so many at a time, the rest refused after a bounded wait."""

from __future__ import annotations

import anyio
import pytest

from edge_onboard.core.admission import Admission, Busy

pytestmark = pytest.mark.anyio


async def hold(gate: Admission, held: anyio.Event, release: anyio.Event) -> None:
    async with gate.turn():
        held.set()
        await release.wait()


async def test_a_request_past_the_slots_waits_then_is_refused() -> None:
    gate = Admission(1, 0.05)
    held, release = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, gate, held, release)
        await held.wait()
        with pytest.raises(Busy):
            async with gate.turn():
                pytest.fail("a second turn was given while the one slot was held")
        release.set()
    async with gate.turn():  # the slot came back
        pass


async def test_a_waiter_gets_the_slot_when_it_frees_within_the_wait() -> None:
    gate = Admission(1, 5.0)
    held, release = anyio.Event(), anyio.Event()
    order: list[str] = []

    async def second() -> None:
        async with gate.turn():
            order.append("second")

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, gate, held, release)
        await held.wait()
        tg.start_soon(second)
        await anyio.sleep(0.05)
        assert gate.waiting == 1 and order == []
        release.set()
    assert order == ["second"]


async def test_neither_refusals_nor_failures_nor_cancellations_leak_a_slot() -> None:
    gate = Admission(2, 0.01)
    for _ in range(5):
        with pytest.raises(ValueError):
            async with gate.turn():
                raise ValueError("the request failed")
    with anyio.move_on_after(0.01):
        async with gate.turn():
            await anyio.sleep(1)  # cancelled while holding its turn
    held, release = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, gate, held, release)
        await held.wait()
        async with gate.turn():  # the second of two slots: still free
            pass
        release.set()
