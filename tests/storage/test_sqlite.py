"""The SQLite file itself: readable by its owner only, WAL files included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_onboard.storage.sqlite import SQLiteStorage
from tests.conftest import FakeClock
from tests.storage.test_contract import make_link

pytestmark = pytest.mark.anyio


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


async def test_database_and_wal_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: without care, files come out 0644
    try:
        store = SQLiteStorage(tmp_path / "edge.db")
        await store.open()
        await store.insert_link(make_link(FakeClock()))
        files = sorted(tmp_path.glob("edge.db*"))
        assert {p.name for p in files} >= {"edge.db", "edge.db-wal", "edge.db-shm"}
        assert {p.name: _mode(p) for p in files} == {p.name: "0o600" for p in files}
        await store.close()
    finally:
        os.umask(old)


async def test_an_existing_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    store = SQLiteStorage(path)
    await store.open()
    await store.close()
    path.chmod(0o644)
    again = SQLiteStorage(path)
    await again.open()
    assert _mode(path) == "0o600"
    await again.close()
