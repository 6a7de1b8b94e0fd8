"""What the fault tests share: a real ``edge-onboard serve`` over a store seeded with a key
and a connected live phone, and Meta's signed inbound posts to it."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import orjson

from edge_onboard.api.auth import create_key
from edge_onboard.meta.inbound import sign_body
from edge_onboard.storage import Storage, from_url
from edge_onboard.storage.base import EventFilter
from edge_onboard.storage.paging import Window
from tests.api.test_event_schemas import connected_phone
from tests.meta.test_inbound import messages_payload

SECRET_KEY = "fault-tests-secret-key-0123456789abcdef"
APP_SECRET = "fault-tests-meta-app-secret"
# A live Meta app (the phone is a live one): its secret signs the inbound posts.
META_APP = {
    "EDGE_META_APP_ID": "1000000000001",
    "EDGE_META_APP_SECRET": APP_SECRET,
    "EDGE_META_CONFIG_ID": "2000000000002",
}


def storage_url(backend: str, tmp_path: Path, mongodb_url: str | None) -> str:
    """A fresh store: a SQLite file in ``tmp_path``, or a database of its own on MongoDB."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'edge.db'}"
    assert mongodb_url is not None
    parts = urlsplit(mongodb_url)
    return urlunsplit(parts._replace(path=f"/faults_{uuid.uuid4().hex[:12]}"))


def service_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "EDGE_STORAGE_URL": url,
        "EDGE_SECRET_KEY": SECRET_KEY,
        "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
        **META_APP,
        **extra,
    }


class Seeded:
    """An organisation's key and one connected live phone (ours and Meta's ids)."""

    def __init__(self, org_id: str, key: str, phone_id: str, meta_phone: str) -> None:
        self.org_id = org_id
        self.key = key
        self.phone_id = phone_id
        self.meta_phone = meta_phone

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def _seed(url: str) -> Seeded:
    store = from_url(url)
    await store.open()
    try:
        now = datetime.now(UTC)
        org, _, key = await create_key(store, "faults", now)
        meta_phone = str(uuid.uuid4().int)[:15]
        phone = dataclasses.replace(
            connected_phone(), org_id=org.id, meta_phone_number_id=meta_phone
        )
        assert await store.insert_phone(phone)
        return Seeded(org.id, key, phone.id, meta_phone)
    finally:
        await store.close()


def seed(url: str) -> Seeded:
    return anyio.run(_seed, url)


def messages_body(meta_phone: str, message_ids: Sequence[str]) -> bytes:
    """One POST of Meta's carrying a text message per id."""
    one = messages_payload(meta_phone)["entry"][0]["changes"][0]["value"]["messages"][0]
    messages = [{**one, "id": ident} for ident in message_ids]
    return orjson.dumps(messages_payload(meta_phone, messages=messages))


def signed_headers(raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign_body(APP_SECRET, raw)}


async def _received(url: str, org_id: str, message_ids: Sequence[str]) -> dict[str, int]:
    """How many ``message.received`` events each Meta message id became."""
    store: Storage = from_url(url)
    await store.open()
    try:
        counts = dict.fromkeys(message_ids, 0)
        flt = EventFilter(livemode=True, types=frozenset({"message.received"}))
        offset = 0
        while True:
            page = await store.list_events(org_id, flt, Window(limit=100, offset=offset))
            for event in page.items:
                ident = event.data.get("metaMessageId")
                if ident in counts:
                    counts[ident] += 1
            offset += len(page.items)
            if not page.has_more:
                return counts
    finally:
        await store.close()


def received(url: str, seeded: Seeded, message_ids: Sequence[str]) -> dict[str, int]:
    return anyio.run(_received, url, seeded.org_id, message_ids)


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process ``pid`` stopped (SIGSTOP) for the block, then continued."""
    import os
    import signal

    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def inbox_size(url: str) -> int:
    """Bodies recorded and not yet processed (read straight from the database)."""
    if url.startswith("sqlite:"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
            (count,) = conn.execute("SELECT count(*) FROM inbox").fetchone()
            return int(count)
    import pymongo

    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(url) as client:
        return int(client.get_default_database()["inbox"].count_documents({}))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)
    return time.monotonic() - started
