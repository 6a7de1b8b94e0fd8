"""docs/reference/webhook-fields.md has a row for every webhook field Meta lists for WABAs
(the list is edge_onboard/meta/fields.py), naming the events the service makes of it."""

from __future__ import annotations

import re
from pathlib import Path

from edge_onboard.meta.fields import WEBHOOK_FIELDS
from edge_onboard.webhooks.catalog import EVENT_TYPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "webhook-fields.md"
ROW = re.compile(r"^\| `(?P<field>[a-z_]+)` \| (?P<what>[^|]+) \| (?P<events>.+) \|$")


def rows() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            assert match["field"] not in found, f"two rows for {match['field']}"
            found[match["field"]] = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", match["events"]))
    return found


def test_every_field_has_a_row_naming_its_events() -> None:
    table = rows()
    missing = sorted(set(WEBHOOK_FIELDS) - set(table))
    assert not missing, f"no row in {DOC.name} for {missing}"
    extra = sorted(set(table) - set(WEBHOOK_FIELDS))
    assert not extra, f"rows for fields the service does not list: {extra}"
    for field, events in WEBHOOK_FIELDS.items():
        assert table[field] == set(events), field


def test_every_event_named_is_in_the_catalog() -> None:
    for field, events in WEBHOOK_FIELDS.items():
        assert set(events) <= set(EVENT_TYPES), field
