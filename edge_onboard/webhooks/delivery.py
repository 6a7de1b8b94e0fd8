"""Outgoing webhook delivery: at least once, signed (Standard Webhooks), retried for days.

Storage is the outbox and the truth; the queue only says what is due. A worker
claims deliveries (with a lease), reads what the claim needs in bulk (the deliveries,
their events and endpoints: one query each), sends each over a kept-alive connection
to an address checked when the connection was made (``edge_onboard/webhooks/sender.py``), and
records the attempt with a conditional update, so two workers racing on one delivery
never count it twice. Deliveries whose lease lapsed (a worker died) are swept back;
deliveries the queue lost (Redis restarted) are re-queued from storage, in batches,
beside the claim loop rather than in its way.

Endpoints are kept in the worker for ``WEBHOOK_TTL`` seconds. A change made through this
process's API (disable, rotate, delete, a 410) takes effect at once; one made by another
process (the API in ``serve`` while this is ``worker``) within ``WEBHOOK_TTL``: until
then a disabled endpoint may still get deliveries, and a rotated one deliveries signed
with the secret it replaced alone (which its receiver still accepts for a day).

Each endpoint gets at most ``per_endpoint`` deliveries in flight; the rest of what the
worker claimed for it waits in the worker, in claim order, and goes out as a slot
frees (at most ``BACKLOG_PER_SLOT`` times the slots; past that a delivery is put back on
the queue briefly, so one slow endpoint cannot hold all of a worker's claims).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup

from edge_onboard.core.breaker import Breaker
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.crypto import SecretBox
from edge_onboard.storage import (
    Delivery,
    DeliveryStatus,
    Event,
    OutgoingWebhook,
    Storage,
    WebhookStatus,
)
from edge_onboard.storage.batch import Coalescer
from edge_onboard.webhooks.queue import DeliveryQueue
from edge_onboard.webhooks.sender import TIMEOUT, Sender, SendResult, parse_retry_after

__all__ = [
    "SCHEDULE",
    "TIMEOUT",
    "DeliveryEngine",
    "SendResult",
    "Sender",
    "event_body",
    "parse_retry_after",
    "sign",
    "signature_header",
    "signing_key",
]

log = logging.getLogger("edge_onboard.webhooks.delivery")

# Seconds to wait before attempt n+1 after attempt n fails: immediately, 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (about three days in all).
SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
LEASE = timedelta(seconds=60)
# Seconds a request may spend queueing its deliveries (one pipeline, however many).
DISPATCH_DEADLINE = 0.25
MAX_RETRY_AFTER = 86400.0
ATTEMPT_LOG_SIZE = 20
# Seconds a worker keeps an endpoint's record (see the module's docstring).
WEBHOOK_TTL = 5.0
# Seconds one wait for another process's "deliveries queued" signal lasts (then again).
WORK_WAIT = 1.0
# Deliveries re-queued per Redis round trip by ``recover``.
RECOVER_CHUNK = 500
# How many of an endpoint's deliveries may wait in the worker, per slot of that endpoint.
BACKLOG_PER_SLOT = 3
# How long a delivery past an endpoint's backlog steps aside (back on the queue).
STEP_ASIDE = timedelta(milliseconds=200)


SECRET_PREFIX = "whsec_"
# The Standard Webhooks spec's bounds for a secret key, in bytes.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64


def signing_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret, as Standard Webhooks reads it: ``whsec_`` and
    padded standard base64 of 24-64 bytes (every generated secret) is those bytes, which
    the libraries' default mode expects; any other string is its UTF-8 bytes (their raw
    mode). Strict decoding, as the Node library does: a secret it would refuse is raw."""
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            key = b""
        if MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            return key
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}``, keyed by ``signing_key``."""
    payload = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one signature per secret, space-separated, in their order."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def event_body(event: Event) -> dict[str, Any]:
    """What a delivery of ``event`` carries (before JSON); ``GET /v1/events/{id}`` serves
    the same, so the API's bytes are the webhook's bytes."""
    return {
        "id": event.id,
        "event": event.type,
        "timestamp": isoformat(event.created_at),
        "organizationId": event.org_id,
        "livemode": event.livemode,
        "data": event.data,
    }


def webhook_secret_context(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


async def _in_scope(
    scope: anyio.CancelScope, fn: Callable[..., Awaitable[None]], *args: Any
) -> None:
    with scope:
        await fn(*args)


# A delivery's last record: its id, the attempt count it had, and the changes.
_Finish = tuple[str, int, Mapping[str, Any]]


class _Job:
    """A claimed delivery with what sending it needs."""

    __slots__ = ("delivery", "event", "webhook")

    def __init__(self, delivery: Delivery, webhook: OutgoingWebhook, event: Event) -> None:
        self.delivery = delivery
        self.webhook = webhook
        self.event = event


class _Endpoint:
    """One endpoint's deliveries in this worker: how many are out, and which wait."""

    __slots__ = ("backlog", "in_flight")

    def __init__(self) -> None:
        self.in_flight = 0
        self.backlog: deque[_Job] = deque()


def _usable(webhook: OutgoingWebhook | None) -> bool:
    return (
        webhook is not None
        and webhook.deleted_at is None
        and webhook.status is WebhookStatus.ACTIVE
    )


class DeliveryEngine:
    def __init__(
        self,
        *,
        storage: Storage,
        queue: DeliveryQueue,
        clock: Clock,
        box: SecretBox,
        sender: Sender,
        concurrency: int = 64,
        per_endpoint: int = 16,
        schedule: Sequence[float] = SCHEDULE,
        lease: timedelta = LEASE,
        jitter: Callable[[], float] = random.random,
        webhook_ttl: float = WEBHOOK_TTL,
    ) -> None:
        self.storage = storage
        self.queue = queue
        self.clock = clock
        self.box = box
        self.sender = sender
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.schedule = tuple(schedule)
        self.lease = lease
        self.webhook_ttl = webhook_ttl
        # The cache's clock (real time, not ``clock``: the window is a real one).
        self.monotonic: Callable[[], float] = time.monotonic
        self._jitter = jitter
        self._webhooks: dict[str, tuple[float, OutgoingWebhook | None]] = {}
        self._secrets: dict[tuple[str, str], str] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        # Claimed and not yet done (sending, or waiting for their endpoint).
        self._running = 0
        self._wake = anyio.Event()
        self._stopping = False
        # Deliveries finishing together are recorded as one write, and acked as one
        # pipeline (storage/batch.py).
        self._finishes: Coalescer[_Finish, None] = Coalescer(self._finish_batch)
        self._acks: Coalescer[str, None] = Coalescer(self._ack_batch)
        # What failed the delivery loop's last round (the queue's Redis, or storage);
        # None once a round succeeds. /readyz reports it.
        self.loop_error: Exception | None = None
        # Queueing on the request path is bounded (a hung Redis costs a request at most
        # DISPATCH_DEADLINE, then nothing while the breaker is open): the app shares its
        # Redis breaker here.
        self.breaker = Breaker()

    def stop(self) -> None:
        """Stop claiming; ``run`` returns once the deliveries in flight are done."""
        self._stopping = True
        self._wake.set()

    # Endpoints, kept briefly

    def forget_webhook(self, webhook_id: str) -> None:
        """The endpoint changed: read it afresh next time."""
        self._webhooks.pop(webhook_id, None)

    async def webhooks_by_id(self, ids: Iterable[str]) -> dict[str, OutgoingWebhook | None]:
        """The endpoints (None for a missing one), from the cache while fresh, else from
        storage in one query."""
        now = self.monotonic()
        found: dict[str, OutgoingWebhook | None] = {}
        missing: list[str] = []
        for ident in ids:
            cached = self._webhooks.get(ident)
            if cached is not None and now - cached[0] < self.webhook_ttl:
                found[ident] = cached[1]
            else:
                missing.append(ident)
        if missing:
            if len(self._webhooks) > 4096:
                self._webhooks = {
                    k: v for k, v in self._webhooks.items() if now - v[0] < self.webhook_ttl
                }
            fetched = {w.id: w for w in await self.storage.get_webhooks(missing)}
            for ident in missing:
                found[ident] = fetched.get(ident)
                self._webhooks[ident] = (now, found[ident])
        return found

    def _secret(self, webhook: OutgoingWebhook, secret_enc: str) -> str:
        key = (webhook.id, secret_enc)
        secret = self._secrets.get(key)
        if secret is None:
            if len(self._secrets) > 4096:
                self._secrets.clear()
            context = webhook_secret_context(webhook.id)
            secret = self._secrets[key] = self.box.decrypt(secret_enc, context=context)
        return secret

    # Feeding the queue

    async def dispatch(self, deliveries: Sequence[Delivery]) -> None:
        """Queue freshly recorded deliveries. A failure here loses nothing: ``recover``
        finds them in storage."""
        due = [(d.id, d.next_attempt_at) for d in deliveries if d.next_attempt_at is not None]
        try:
            if due:
                await self.breaker.call(
                    lambda: self.queue.enqueue_many(due), deadline=DISPATCH_DEADLINE
                )
        except Exception as exc:  # the queue is down: storage still has them
            log.warning("could not queue %d deliveries (%s); recovery will", len(deliveries), exc)
        self._wake.set()

    async def recover(self, horizon: timedelta = timedelta(minutes=10)) -> int:
        """Queue every pending delivery due within ``horizon`` (idempotent), in chunks of
        ``RECOVER_CHUNK``: one round trip each."""
        due = await self.storage.due_deliveries(self.clock() + horizon, limit=10_000)
        items = [(d.id, d.next_attempt_at) for d in due if d.next_attempt_at is not None]
        for start in range(0, len(items), RECOVER_CHUNK):
            await self.queue.enqueue_many(items[start : start + RECOVER_CHUNK])
        return len(due)

    async def _listen_for_work(self) -> None:
        """Wake the claim loop as soon as any process queues deliveries (``serve``'s API
        beside a separate ``worker``, or another worker), not at its next poll."""
        while True:
            try:
                if await self.queue.wait_for_work(WORK_WAIT):
                    self._wake.set()
            except Exception as exc:  # a Redis blip: the poll still claims meanwhile
                log.debug("waiting for queued deliveries: %s", exc)
                await anyio.sleep(WORK_WAIT)

    async def _recover_forever(self, every: float) -> None:
        while True:
            try:
                await self.recover()
            except Exception as exc:  # a Redis or storage blip: the next round retries
                log.warning("delivery recovery: %s; retrying in %.0f s", exc, every)
            await anyio.sleep(every)

    # Working

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """Deliver everything due now, then return how many deliveries were processed
        (for tests and one-shot runs: nothing sleeps)."""
        processed = 0
        for _ in range(max_rounds):
            await self.queue.sweep(self.clock())
            ids = await self.queue.claim(self.clock(), self.concurrency, self.lease)
            if not ids:
                break
            self._running += len(ids)
            async with anyio.create_task_group() as tg:
                await self._work(tg, ids)
            processed += len(ids)
        return processed

    async def run(self, *, poll: float = 0.1, recover_every: float = 30.0) -> None:
        """Deliver until stopped, with bounded concurrency overall and per endpoint."""
        last_sweep = 0.0
        async with anyio.create_task_group() as tg:
            recovering = anyio.CancelScope()
            tg.start_soon(_in_scope, recovering, self._recover_forever, recover_every)
            listening = anyio.CancelScope()
            tg.start_soon(_in_scope, listening, self._listen_for_work)
            while not self._stopping:
                self._wake = anyio.Event()  # before claiming: a wake meanwhile is kept
                loop_now = time.monotonic()
                free = 0
                try:
                    if loop_now - last_sweep >= 5.0:
                        await self.queue.sweep(self.clock())
                        last_sweep = loop_now
                    free = self.concurrency - self._running
                    ids = await self.queue.claim(self.clock(), free, self.lease) if free else []
                    self.loop_error = None
                except Exception as exc:  # a Redis or storage blip: keep the loop alive
                    log.warning("delivery loop: %s; retrying", exc)
                    self.loop_error = exc
                    ids = []
                    await anyio.sleep(1.0)
                if ids:
                    self._running += len(ids)
                    tg.start_soon(self._work, tg, ids)
                if (not ids or len(ids) < free) and not self._stopping:
                    # No free slot, or the queue had no more due: wait for a wake (slots
                    # freed, deliveries dispatched) or the next poll.
                    with anyio.move_on_after(poll):
                        await self._wake.wait()
            recovering.cancel()
            listening.cancel()

    def _done(self, count: int) -> None:
        self._running -= count
        # Claim again once half the slots are free (not for every single one: a claim
        # is two round trips over every partition); a busy endpoint's backlog keeps its
        # slots busy meanwhile.
        if count and self.concurrency - self._running >= max(1, self.concurrency // 2):
            self._wake.set()

    async def process(self, delivery_id: str) -> None:
        """Deliver one claimed delivery, as a claim does."""
        self._running += 1
        async with anyio.create_task_group() as tg:
            await self._work(tg, [delivery_id])

    async def _work(self, tg: TaskGroup, ids: Sequence[str]) -> None:
        """Read what the claimed ``ids`` need (one query per kind) and hand each to its
        endpoint; each counts as running until done."""
        try:
            jobs = await self._prepare(ids)
        except Exception:
            log.exception("could not read %d claimed deliveries; their leases will lapse", len(ids))
            self._done(len(ids))
            return
        self._done(len(ids) - len(jobs))
        for job in jobs:
            endpoint = self._endpoints.get(job.webhook.id)
            if endpoint is None:
                endpoint = self._endpoints[job.webhook.id] = _Endpoint()
            if endpoint.in_flight < self.per_endpoint:
                endpoint.in_flight += 1
                tg.start_soon(self._serve, job.webhook.id, endpoint, job)
            elif len(endpoint.backlog) < self.per_endpoint * BACKLOG_PER_SLOT:
                endpoint.backlog.append(job)
            else:
                tg.start_soon(self._step_aside, job.delivery.id)

    async def _prepare(self, ids: Sequence[str]) -> list[_Job]:
        deliveries = [
            d for d in await self.storage.get_deliveries(ids) if d.status is DeliveryStatus.PENDING
        ]
        pending = {d.id for d in deliveries}
        for ident in ids:
            if ident not in pending:
                await self._ack(ident)  # done already (a duplicate claim)
        if not deliveries:
            return []
        webhooks = await self.webhooks_by_id({d.webhook_id for d in deliveries})
        events = {e.id: e for e in await self.storage.get_events({d.event_id for d in deliveries})}
        jobs: list[_Job] = []
        for delivery in deliveries:
            webhook = webhooks.get(delivery.webhook_id)
            event = events.get(delivery.event_id)
            if webhook is None or not _usable(webhook):
                reason = (
                    "endpoint deleted"
                    if webhook is None or webhook.deleted_at
                    else "endpoint disabled"
                )
                await self._finish(delivery, DeliveryStatus.FAILED, None, reason, count=False)
            elif event is None:
                await self._finish(
                    delivery, DeliveryStatus.FAILED, None, "event missing", count=False
                )
            else:
                jobs.append(_Job(delivery, webhook, event))
        return jobs

    async def _serve(self, webhook_id: str, endpoint: _Endpoint, job: _Job) -> None:
        """Send ``job``, then what waits for the same endpoint, one after another."""
        waited = False
        try:
            while True:
                await self._deliver(job, waited=waited)
                if not endpoint.backlog:
                    break
                job, waited = endpoint.backlog.popleft(), True
        finally:
            endpoint.in_flight -= 1
            if not endpoint.in_flight and not endpoint.backlog:
                self._endpoints.pop(webhook_id, None)

    async def _deliver(self, job: _Job, *, waited: bool) -> None:
        try:
            if waited:
                # It waited its turn: the endpoint may have been disabled meanwhile (410).
                fresh = (await self.webhooks_by_id([job.webhook.id]))[job.webhook.id]
                if fresh is None or not _usable(fresh):
                    await self._finish(
                        job.delivery, DeliveryStatus.FAILED, None, "endpoint disabled", count=False
                    )
                    return
                job.webhook = fresh
            await self._send(job.delivery, job.webhook, job.event)
        except Exception:
            log.exception(
                "delivery %s crashed; its lease will lapse and it will be retried", job.delivery.id
            )
        finally:
            self._done(1)

    async def _step_aside(self, delivery_id: str) -> None:
        try:
            await self.queue.retry(delivery_id, self.clock() + STEP_ASIDE)
        except Exception as exc:  # its lease lapses instead
            log.warning("could not put delivery %s back (%s)", delivery_id, exc)
        finally:
            self._done(1)

    async def _ack(self, delivery_id: str) -> None:
        await self._acks.submit(delivery_id)

    async def _finish_batch(self, finishes: Sequence[_Finish]) -> list[None]:
        await self.storage.finish_deliveries(finishes)
        return [None] * len(finishes)

    async def _ack_batch(self, ids: Sequence[str]) -> list[None]:
        await self.queue.ack_many(ids)
        return [None] * len(ids)

    async def _send(self, delivery: Delivery, webhook: OutgoingWebhook, event: Event) -> None:
        now = self.clock()
        # Within a day of a rotation, both the new secret and the one it replaced sign.
        secrets = [self._secret(webhook, enc) for enc in webhook.signing_secrets_enc(now)]
        body = orjson.dumps(event_body(event))
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, event.id, timestamp, body),
        }
        result = await self.sender.send(webhook.url, body, headers, now)
        await self._record(delivery, webhook, result)

    async def _record(
        self, delivery: Delivery, webhook: OutgoingWebhook, result: SendResult
    ) -> None:
        attempts = delivery.attempts + 1
        if result.ok:
            await self._finish(delivery, DeliveryStatus.SUCCEEDED, result, None)
            return
        if result.status_code == 410:
            await self.storage.update_webhook(
                webhook.org_id,
                webhook.id,
                {
                    "status": WebhookStatus.DISABLED,
                    "updated_at": self.clock(),
                    "disabled_reason": "The endpoint answered 410 Gone.",
                },
            )
            self.forget_webhook(webhook.id)
            await self._finish(delivery, DeliveryStatus.FAILED, result, "endpoint gone (410)")
            return
        if attempts >= len(self.schedule):
            await self._finish(delivery, DeliveryStatus.FAILED, result, result.error)
            return
        # Backoff with jitter (±20 %), never sooner than the receiver's Retry-After.
        delay = self.schedule[attempts] * (0.8 + 0.4 * self._jitter())
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, MAX_RETRY_AFTER))
        now = self.clock()
        next_at = now + timedelta(seconds=delay)
        updated = await self.storage.update_delivery(
            delivery.id,
            {
                "attempts": attempts,
                "next_attempt_at": next_at,
                "updated_at": now,
                **self._attempt_fields(delivery, result, now),
            },
            expect_attempts=delivery.attempts,
        )
        if updated is None:
            await self._ack(delivery.id)  # another worker recorded this attempt
            return
        await self.queue.retry(delivery.id, next_at)

    def _attempt_fields(
        self, delivery: Delivery, result: SendResult, now: datetime
    ) -> dict[str, Any]:
        entry = {
            "at": isoformat(now),
            "statusCode": result.status_code,
            "error": result.error,
            "durationMs": result.duration_ms,
        }
        return {
            "last_attempt_at": now,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "attempt_log": [*delivery.attempt_log, entry][-ATTEMPT_LOG_SIZE:],
        }

    async def _finish(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        result: SendResult | None,
        error: str | None,
        *,
        count: bool = True,
    ) -> None:
        now = self.clock()
        changes: dict[str, Any] = {"status": status, "next_attempt_at": None, "updated_at": now}
        if result is not None:
            changes.update(self._attempt_fields(delivery, result, now))
        if count:
            changes["attempts"] = delivery.attempts + 1
        if error is not None:
            changes["last_error"] = error
        await self._finishes.submit((delivery.id, delivery.attempts, changes))
        await self._ack(delivery.id)
        if status is DeliveryStatus.FAILED:
            log.info("delivery %s failed for good: %s", delivery.id, error)
