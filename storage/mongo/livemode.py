"""MongoDB side of test mode: records written before it have no ``livemode`` field.

They are live. Lists filter on ``livemode`` as the second key of their index, so the
field is set on the old records once (a marker in ``schema_changes`` says it was done),
and every list stays one index range.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
MARKER = "livemode"


async def backfill_livemode(
    db: AsyncDatabase[Doc], collections: list[AsyncCollection[Doc]]
) -> None:
    """Mark the records made before test mode as live, once per database."""
    changes = db["schema_changes"]
    if await changes.find_one({"_id": MARKER}) is not None:
        return
    for collection in collections:
        await collection.update_many({"livemode": {"$exists": False}}, {"$set": {"livemode": True}})
    await changes.update_one({"_id": MARKER}, {"$set": {"done": True}}, upsert=True)
