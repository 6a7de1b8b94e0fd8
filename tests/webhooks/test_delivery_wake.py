"""A waiting worker claims as soon as another process queues deliveries, on a real Redis:
not at its next poll."""

from __future__ import annotations

import functools
import uuid

import anyio
import httpx
import pytest

from edge_onboard.core import redis_keys as keys
from edge_onboard.core.clock import system_clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.storage import OutgoingWebhook, WebhookStatus
from edge_onboard.storage.memory import MemoryStorage
from edge_onboard.webhooks.delivery import DeliveryEngine, Sender, webhook_secret_context
from edge_onboard.webhooks.endpoints import new_event, plan_deliveries
from edge_onboard.webhooks.queue.redis import RedisQueue

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
POLL = 30.0  # the worker's own poll: far longer than the test waits


async def test_a_waiting_worker_delivers_what_another_process_queues(redis_url: str) -> None:
    received: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request.headers["webhook-id"])
        return httpx.Response(204)

    box = SecretBox("wake-test-key-" + "k" * 40)
    storage = MemoryStorage()
    await storage.open()
    queue, other_process = RedisQueue.from_url(redis_url), RedisQueue.from_url(redis_url)
    await queue.client.delete(keys.DELIVERY_WAKE)
    now, ident = system_clock(), str(uuid.uuid4())
    webhook = OutgoingWebhook(
        id=ident,
        org_id="org-wake",
        url="http://127.0.0.1:9/hook",
        secret_enc=box.encrypt("whsec-wake-test", context=webhook_secret_context(ident)),
        events=["phone_number.connected"],
        status=WebhookStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    await storage.insert_webhook(webhook)
    sender = Sender(allow_private=True, transport=httpx.MockTransport(receiver))
    engine = DeliveryEngine(
        storage=storage, queue=queue, clock=system_clock, box=box, sender=sender
    )
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(engine.run, poll=POLL, recover_every=POLL))
            await anyio.sleep(0.5)  # its first claim and recovery found nothing: it waits
            event = new_event(
                "org-wake", "phone_number.connected", {"n": 1}, None, system_clock, livemode=True
            )
            planned = plan_deliveries(event, [webhook])
            await storage.record_event(event, planned)
            started = anyio.current_time()
            await other_process.enqueue_many([(d.id, system_clock()) for d in planned])
            with anyio.fail_after(5):
                while not received:
                    await anyio.sleep(0.01)
            took = anyio.current_time() - started
            engine.stop()
    finally:
        await sender.aclose()
        await queue.close()
        await other_process.close()
        await storage.close()
    assert received == [event.id]
    assert took < 2.0, took  # woken, not polled (the poll is 30 s)
