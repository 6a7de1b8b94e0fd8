"""MongoDB backend (``mongodb://…/db``): production, through PyMongo's native async API.

Indexes and unique constraints are created at ``open``. Conditional updates are
single ``find_one_and_update`` calls whose filter carries the condition, so the
store decides the race, not Python.
"""

from __future__ import annotations

from edge_onboard.storage.mongo.connection import DEFAULT_DATABASE, LINK_LIST_INDEXES, window_page
from edge_onboard.storage.mongo.deliveries import EventStore
from edge_onboard.storage.mongo.inbox import InboxStore
from edge_onboard.storage.mongo.links import LinkStore
from edge_onboard.storage.mongo.orgs import OrgStore
from edge_onboard.storage.mongo.phones import PhoneStore
from edge_onboard.storage.mongo.webhooks import WebhookStore


class MongoStorage(OrgStore, LinkStore, PhoneStore, WebhookStore, EventStore, InboxStore):
    """The MongoDB backend: each record kind's methods (a module each) on one client."""


__all__ = ["DEFAULT_DATABASE", "LINK_LIST_INDEXES", "MongoStorage", "window_page"]
