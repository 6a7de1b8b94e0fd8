"""MongoDB: organisations, their API keys, and Idempotency-Key records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import InsertOne, ReturnDocument, UpdateOne

from edge_onboard.storage.base import DuplicateError, StorageError
from edge_onboard.storage.models import ApiKey, IdempotencyRecord, Organization
from edge_onboard.storage.mongo.connection import MongoBase
from edge_onboard.storage.mongo.docs import errors as _errors
from edge_onboard.storage.mongo.docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo.docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo.docs import writing as _writing


class OrgStore(MongoBase):
    # Organisations

    async def get_or_create_org(self, org: Organization) -> Organization:
        for _ in range(3):
            try:
                with _writing():
                    doc = await self.orgs.find_one_and_update(
                        {"name": org.name},
                        {"$setOnInsert": _to_mongo(org.to_doc())},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
            except DuplicateError:
                continue  # two upserts raced on the unique name: the other one won
            assert doc is not None
            return Organization.from_doc(_from_mongo(doc))
        raise StorageError("mongodb: could not create the organisation")

    async def get_org(self, org_id: str) -> Organization | None:
        with _errors():
            doc = await self.orgs.find_one({"_id": org_id})
        return Organization.from_doc(_from_mongo(doc)) if doc else None

    async def update_org(self, org_id: str, changes: Mapping[str, Any]) -> Organization | None:
        with _writing():
            doc = await self.orgs.find_one_and_update(
                {"_id": org_id},
                {"$set": _to_mongo(changes)},
                return_document=ReturnDocument.AFTER,
            )
        return Organization.from_doc(_from_mongo(doc)) if doc else None

    # API keys

    async def insert_api_key(self, key: ApiKey) -> None:
        with _writing():
            await self.keys.insert_one(_to_mongo(key.to_doc()))

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with _errors():
            doc = await self.keys.find_one({"key_hash": key_hash})
        return ApiKey.from_doc(_from_mongo(doc)) if doc else None

    async def find_api_keys(self, id_or_prefix: str) -> list[ApiKey]:
        import re

        query = {
            "$or": [{"_id": id_or_prefix}, {"prefix": {"$regex": "^" + re.escape(id_or_prefix)}}]
        }
        with _errors():
            docs = await self.keys.find(query).to_list(None)
        return [ApiKey.from_doc(_from_mongo(d)) for d in docs]

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        with _writing():
            result = await self.keys.update_one(
                {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
            )
        return result.modified_count == 1

    # Idempotency

    async def claim_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        doc = record.to_doc()
        for _ in range(5):
            try:
                await self._idem_writes.submit(InsertOne(dict(doc)))
                return None
            except DuplicateError:
                pass
            with _writing():
                # An expired record (not yet swept by the TTL monitor) is taken over.
                replaced = await self.idem.find_one_and_replace(
                    {
                        "org_id": record.org_id,
                        "key": record.key,
                        "$or": [
                            {"expires_at": {"$lte": record.created_at}},
                            {"status_code": None, "locked_until": {"$lte": record.created_at}},
                        ],
                    },
                    dict(doc),
                )
                if replaced is not None:
                    return None
                existing = await self.idem.find_one({"org_id": record.org_id, "key": record.key})
            if existing is not None:
                return IdempotencyRecord.from_doc(_from_mongo(existing))
        raise StorageError("mongodb: idempotency record kept changing")

    async def complete_idempotency(
        self, org_id: str, key: str, status_code: int, body: bytes
    ) -> None:
        await self._idem_writes.submit(
            UpdateOne(
                {"org_id": org_id, "key": key},
                {"$set": {"status_code": status_code, "body": body}},
            )
        )

    async def release_idempotency(self, org_id: str, key: str) -> None:
        with _writing():
            await self.idem.delete_one({"org_id": org_id, "key": key})
