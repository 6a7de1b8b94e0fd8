"""The SQLite schema: its migrations, applied in order at open (``PRAGMA user_version``
records how far a file is), and the file's permissions."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from edge_onboard.storage.base import StorageError
from edge_onboard.storage.sqlite import events as sqlite_events

# Each entry moves the schema one version up; PRAGMA user_version records where we are.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE orgs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        doc TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX api_keys_prefix ON api_keys (prefix);
    CREATE TABLE links (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        status TEXT NOT NULL,
        external_id TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX links_org_created ON links (org_id, created_at DESC, id DESC);
    CREATE INDEX links_org_status ON links (org_id, status, created_at DESC);
    CREATE INDEX links_org_external ON links (org_id, external_id);
    CREATE TABLE idempotency (
        org_id TEXT NOT NULL,
        key TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (org_id, key)
    );
    CREATE INDEX idempotency_expires ON idempotency (expires_at);
    """,
    """
    CREATE TABLE wabas (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        meta_waba_id TEXT NOT NULL,
        doc TEXT NOT NULL,
        UNIQUE (org_id, meta_waba_id)
    );
    CREATE TABLE phones (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        meta_phone_number_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        doc TEXT NOT NULL,
        UNIQUE (org_id, meta_phone_number_id)
    );
    CREATE INDEX phones_org_created ON phones (org_id, created_at DESC, id DESC);
    """,
    """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        status TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX webhooks_org_created ON webhooks (org_id, created_at DESC, id DESC);
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER,
        created_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX deliveries_webhook_created ON deliveries (webhook_id, created_at DESC, id DESC);
    CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
    """,
    """
    CREATE INDEX phones_meta ON phones (meta_phone_number_id);
    """,
    """
    CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        closed INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX grants_open ON grants (closed, received_at);
    CREATE INDEX links_status_expires ON links (status, expires_at);
    CREATE INDEX links_session_waba ON links (json_extract(doc, '$.session_report.waba_id'));
    CREATE INDEX wabas_meta ON wabas (meta_waba_id);
    """,
    # Lists as index ranges (storage/paging.py): every filter has an index in list order
    # that also holds what the bounded count tests.
    """
    DROP INDEX links_org_created;
    DROP INDEX links_org_status;
    DROP INDEX links_org_external;
    CREATE INDEX links_org_list ON links (org_id, created_at DESC, id DESC, status);
    CREATE INDEX links_org_status_list
        ON links (org_id, status, created_at DESC, id DESC, expires_at);
    CREATE INDEX links_org_external_list
        ON links (org_id, external_id, created_at DESC, id DESC, status);
    CREATE INDEX links_org_due ON links (org_id, status, expires_at);
    """,
    # The events API: lists by type and time, the retention sweep, recoveries.
    sqlite_events.MIGRATION,
    # Test mode: every list is of one mode, so livemode follows org_id in each list
    # index. Rows written before it are live.
    """
    ALTER TABLE links ADD COLUMN livemode INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE phones ADD COLUMN livemode INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE wabas ADD COLUMN livemode INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE webhooks ADD COLUMN livemode INTEGER NOT NULL DEFAULT 1;
    DROP INDEX links_org_list;
    DROP INDEX links_org_status_list;
    DROP INDEX links_org_external_list;
    DROP INDEX links_org_due;
    DROP INDEX phones_org_created;
    DROP INDEX webhooks_org_created;
    CREATE INDEX links_org_list ON links (org_id, livemode, created_at DESC, id DESC, status);
    CREATE INDEX links_org_status_list
        ON links (org_id, livemode, status, created_at DESC, id DESC, expires_at);
    CREATE INDEX links_org_external_list
        ON links (org_id, livemode, external_id, created_at DESC, id DESC, status);
    CREATE INDEX links_org_due ON links (org_id, livemode, status, expires_at);
    CREATE INDEX phones_org_created ON phones (org_id, livemode, created_at DESC, id DESC);
    CREATE INDEX webhooks_org_created ON webhooks (org_id, livemode, created_at DESC, id DESC);
    CREATE INDEX wabas_org ON wabas (org_id, livemode);
    """,
    # Meta's inbound, recorded before it is acknowledged (storage/sqlite/inbox.py).
    """
    CREATE TABLE inbox (
        id TEXT PRIMARY KEY,
        lease_until INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        livemode INTEGER,
        body BLOB NOT NULL
    );
    CREATE INDEX inbox_lease ON inbox (lease_until);
    """,
)


def owner_only(path: Path | None) -> None:
    """Create the database file readable by its owner only, and tighten an existing one
    and its WAL and shared-memory files: SQLite gives those the database file's mode."""
    if path is None or str(path) == ":memory:":
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)


def migrate(c: sqlite3.Connection) -> None:
    c.execute("BEGIN IMMEDIATE")
    (version,) = c.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        c.execute("ROLLBACK")
        raise StorageError(
            f"sqlite: database schema version {version} is newer than this build "
            f"({len(MIGRATIONS)}); upgrade edge-onboard"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in script.split(";"):
            if statement.strip():
                c.execute(statement)
        c.execute(f"PRAGMA user_version = {number}")
    c.execute("COMMIT")
