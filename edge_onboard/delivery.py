"""Outgoing webhook delivery: at least once, signed (Standard Webhooks), retried for days.

Storage is the outbox and the truth; the queue only says what is due. A worker
claims deliveries (with a lease), sends each to an address it has just checked and
pinned, and records the attempt with a conditional update, so two workers racing on
one delivery never count it twice. Deliveries whose lease lapsed (a worker died) are
swept back; deliveries the queue lost (Redis restarted) are re-queued from storage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hashlib
import hmac
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
import orjson

from edge_onboard.clock import Clock, isoformat
from edge_onboard.crypto import SecretBox
from edge_onboard.queue import DeliveryQueue
from edge_onboard.storage import (
    Delivery,
    DeliveryStatus,
    OutgoingWebhook,
    Storage,
    WebhookStatus,
)
from edge_onboard.urls import address_problem, resolve

log = logging.getLogger("edge_onboard.delivery")

# Seconds to wait before attempt n+1 after attempt n fails: immediately, 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (about three days in all).
SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
TIMEOUT = 15.0
LEASE = timedelta(seconds=60)
MAX_RETRY_AFTER = 86400.0
ATTEMPT_LOG_SIZE = 20


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


def webhook_secret_context(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    error: str | None = None
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - now).total_seconds())
    return None


class Sender:
    """POSTs to a checked, pinned address: DNS is resolved once, every address is checked,
    and the connection goes to that address (Host and TLS SNI keep the name)."""

    def __init__(self, *, allow_private: bool, transport: httpx.AsyncBaseTransport | None = None):
        self.allow_private = allow_private
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": "edge-onboard-webhooks/1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], now: datetime
    ) -> SendResult:
        started = time.monotonic()
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await resolve(host, port)
        if not addresses:
            return SendResult(None, f"could not resolve {host}")
        for address in addresses:
            problem = address_problem(address, allow_private=self.allow_private)
            if problem:
                return SendResult(None, f"refused: {host} resolves to {problem}")
        address = addresses[0]
        pinned_host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        pinned = urlunsplit(parts._replace(netloc=f"{pinned_host}:{port}"))
        send_headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            async with self._client.stream(
                "POST", pinned, content=body, headers=send_headers, extensions=extensions
            ) as response:
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        except httpx.TimeoutException:
            return SendResult(None, "timed out after 15 s", duration_ms=_ms_since(started))
        except httpx.HTTPError as exc:
            return SendResult(
                None, f"connection failed ({type(exc).__name__})", duration_ms=_ms_since(started)
            )
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return SendResult(status, error, retry_after, _ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


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
        self._jitter = jitter
        self._endpoint_limiters: dict[str, anyio.CapacityLimiter] = {}
        self._running = 0
        self._wake = anyio.Event()
        self._stopping = False
        # What failed the delivery loop's last round (the queue's Redis, or storage);
        # None once a round succeeds. /readyz reports it.
        self.loop_error: Exception | None = None

    def stop(self) -> None:
        """Stop claiming; ``run`` returns once the deliveries in flight are done."""
        self._stopping = True
        self._wake.set()

    # Feeding the queue

    async def dispatch(self, deliveries: Sequence[Delivery]) -> None:
        """Queue freshly recorded deliveries. A failure here loses nothing: ``recover``
        finds them in storage."""
        try:
            for delivery in deliveries:
                if delivery.next_attempt_at is not None:
                    await self.queue.enqueue(delivery.id, delivery.next_attempt_at)
        except Exception as exc:  # the queue is down: storage still has them
            log.warning("could not queue %d deliveries (%s); recovery will", len(deliveries), exc)
        self._wake.set()

    async def recover(self, horizon: timedelta = timedelta(minutes=10)) -> int:
        """Queue every pending delivery due within ``horizon`` (idempotent)."""
        due = await self.storage.due_deliveries(self.clock() + horizon, limit=10_000)
        for delivery in due:
            assert delivery.next_attempt_at is not None
            await self.queue.enqueue(delivery.id, delivery.next_attempt_at)
        return len(due)

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
            async with anyio.create_task_group() as tg:
                for ident in ids:
                    tg.start_soon(self.process, ident)
            processed += len(ids)
        return processed

    async def run(self, *, poll: float = 0.1, recover_every: float = 30.0) -> None:
        """Deliver until cancelled, with bounded concurrency overall and per endpoint."""
        last_recover = -recover_every
        last_sweep = 0.0
        async with anyio.create_task_group() as tg:
            while not self._stopping:
                loop_now = time.monotonic()
                try:
                    if loop_now - last_recover >= recover_every:
                        await self.recover()
                        last_recover = loop_now
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
                for ident in ids:
                    self._running += 1
                    tg.start_soon(self._process_counted, ident)
                if not ids and not self._stopping:
                    self._wake = anyio.Event()
                    with anyio.move_on_after(poll):
                        await self._wake.wait()

    async def _process_counted(self, delivery_id: str) -> None:
        try:
            await self.process(delivery_id)
        except Exception:
            log.exception(
                "delivery %s crashed; its lease will lapse and it will be retried", delivery_id
            )
        finally:
            self._running -= 1

    async def process(self, delivery_id: str) -> None:
        delivery = await self.storage.get_delivery(delivery_id)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            await self.queue.ack(delivery_id)  # done already (a duplicate claim)
            return
        webhook = await self.storage.get_webhook(delivery.webhook_id)
        if (
            webhook is None
            or webhook.deleted_at is not None
            or webhook.status is not WebhookStatus.ACTIVE
        ):
            reason = (
                "endpoint deleted" if webhook is None or webhook.deleted_at else "endpoint disabled"
            )
            await self._finish(delivery, DeliveryStatus.FAILED, None, reason, count=False)
            return
        limiter = self._endpoint_limiters.setdefault(
            webhook.id, anyio.CapacityLimiter(self.per_endpoint)
        )
        if limiter.statistics().tasks_waiting >= self.per_endpoint:
            # That endpoint is saturated and has a queue of its own already: step aside
            # briefly instead of holding one more of the worker's slots.
            await self.queue.retry(delivery_id, self.clock() + timedelta(milliseconds=200))
            return
        waited = limiter.available_tokens == 0
        async with limiter:
            if waited:
                # It waited its turn: the endpoint may have been disabled meanwhile (410).
                fresh = await self.storage.get_webhook(webhook.id)
                if fresh is None or fresh.status is not WebhookStatus.ACTIVE or fresh.deleted_at:
                    await self._finish(
                        delivery, DeliveryStatus.FAILED, None, "endpoint disabled", count=False
                    )
                    return
            await self._send(delivery, webhook)

    async def _send(self, delivery: Delivery, webhook: OutgoingWebhook) -> None:
        event = await self.storage.get_event(delivery.event_id)
        if event is None:
            await self._finish(delivery, DeliveryStatus.FAILED, None, "event missing", count=False)
            return
        now = self.clock()
        # Within a day of a rotation, both the new secret and the one it replaced sign.
        secrets = [
            self.box.decrypt(secret_enc, context=webhook_secret_context(webhook.id))
            for secret_enc in webhook.signing_secrets_enc(now)
        ]
        body = orjson.dumps(
            {
                "id": event.id,
                "event": event.type,
                "timestamp": isoformat(event.created_at),
                "organizationId": event.org_id,
                "data": event.data,
            }
        )
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
            await self.queue.ack(delivery.id)  # another worker recorded this attempt
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
        await self.storage.update_delivery(delivery.id, changes, expect_attempts=delivery.attempts)
        await self.queue.ack(delivery.id)
        if status is DeliveryStatus.FAILED:
            log.info("delivery %s failed for good: %s", delivery.id, error)
