"""MongoDB documents and errors: records to BSON and back, driver errors as the storage
protocol's, bounded writes, and bulk writes with an outcome per write (storage/mongo/)."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pymongo
from bson.errors import InvalidDocument
from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from edge_onboard.storage.base import (
    DuplicateError,
    InvalidRecordError,
    StorageError,
)

Doc = dict[str, Any]


@contextlib.contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except DuplicateKeyError as exc:
        raise DuplicateError(str(exc)) from exc
    except (InvalidDocument, OverflowError) as exc:
        raise InvalidRecordError(f"mongodb cannot store this value: {exc}") from exc
    except PyMongoError as exc:
        raise StorageError(f"mongodb: {exc}") from exc


# Writes wait out a replica-set election rather than give up after 5 s as reads do. A write
# in flight when the primary dies may have been applied: the driver replays it on the new
# primary (a retryable write, or with_transaction's retry), where it takes effect once, but
# only if its deadline outlasts the election (about 12 s after a primary dies, MongoDB's
# default electionTimeoutMillis being 10 s; about 1 s after a step-down). Given up sooner,
# its outcome is unknown to us: a claim it made (an Idempotency-Key, a link's completion)
# would stay held, answering the client's retry 409, or a create retried after the 503
# would be made twice.
WRITE_TIMEOUT = 20.0


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """``_errors`` for writes, under the WRITE_TIMEOUT deadline (server selection included)."""
    with errors(), pymongo.timeout(WRITE_TIMEOUT):
        yield


def native(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return value


def to_mongo(doc: Mapping[str, Any]) -> Doc:
    out = {k: native(v) for k, v in doc.items()}
    if "id" in out:
        out["_id"] = out.pop("id")
    return out


def from_mongo(doc: Mapping[str, Any]) -> Doc:
    out = dict(doc)
    if "_id" in out and not isinstance(out["_id"], str):
        out.pop("_id")
    elif "_id" in out:
        out["id"] = out.pop("_id")
    return out


Write = InsertOne[Any] | UpdateOne


async def bulk(
    collection: AsyncCollection[Doc], timeout: float, writes: Sequence[Write]
) -> list[Exception | None]:
    """The writes of concurrent requests as one unordered bulk write, each with its own
    outcome: a duplicate key fails only the request that sent it."""
    try:
        # Bounded, all in (server selection included): the batch is written in a
        # shielded scope (storage/batch.py), so nothing else would stop it.
        with pymongo.timeout(timeout):
            await collection.bulk_write(list(writes), ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            return [StorageError(f"mongodb: {exc}") for _ in writes]
        outcomes: list[Exception | None] = [None] * len(writes)
        for error in exc.details.get("writeErrors", []):
            message = f"mongodb: {error.get('errmsg', 'write failed')}"
            outcomes[error["index"]] = (
                DuplicateError(message) if error.get("code") == 11000 else StorageError(message)
            )
        return outcomes
    except (InvalidDocument, OverflowError) as exc:
        return [InvalidRecordError(f"mongodb cannot store this value: {exc}") for _ in writes]
    except PyMongoError as exc:
        return [StorageError(f"mongodb: {exc}") for _ in writes]
    return [None] * len(writes)
