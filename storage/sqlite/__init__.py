"""SQLite backend (``sqlite:///path``): the embedded default.

stdlib ``sqlite3`` on one connection, driven from anyio worker threads one call at
a time. WAL lets other processes (the CLI) read and write the same file meanwhile.
Records are stored as a JSON document beside the columns that are queried or
constrained; read-modify-write updates run inside ``BEGIN IMMEDIATE`` so they are
atomic across threads and processes.
"""

from __future__ import annotations

from edge_onboard.storage.sqlite.connection import READERS
from edge_onboard.storage.sqlite.deliveries import EventStore
from edge_onboard.storage.sqlite.inbox import InboxStore
from edge_onboard.storage.sqlite.links import LinkStore
from edge_onboard.storage.sqlite.orgs import OrgStore
from edge_onboard.storage.sqlite.phones import PhoneStore
from edge_onboard.storage.sqlite.webhooks import WebhookStore


class SQLiteStorage(OrgStore, LinkStore, PhoneStore, WebhookStore, EventStore, InboxStore):
    """The SQLite backend: each record kind's methods (a module each) on one connection."""


__all__ = ["READERS", "SQLiteStorage"]
