"""DynamoDB transactions on the embedded AWS, at a cost that does not grow with the tables.

moto's `TransactWriteItems` backs up every table it touches with a deep copy (once per item of
the transaction) and rolls a cancelled transaction back by putting those copies in place of the
tables: the cost grows with every row written (about one event a second once a table holds
~2,000 rows), the stream shard is replaced by its copy, and whatever other threads wrote
meanwhile is lost. Here the transaction keeps a journal of the items it touches, the item as it
was (a copy only of an item an Update changes in place) and each stream's length, and a
cancelled transaction puts back exactly those items and drops exactly those stream records.

What AWS documents, and is kept
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html):
all-or-nothing, up to 100 distinct items; a cancelled transaction answers
TransactionCanceledException with one CancellationReason per item, in order ("None" for the
items that were not the cause; ConditionalCheckFailed with the item's ALL_OLD image when
ReturnValuesOnConditionCheckFailure asks for it); its writes never reach the stream. Isolation
("Isolation levels for DynamoDB transactions", same page): a transaction is serializable with
the single-item writes and reads, so one lock takes every DynamoDB request of the embedded AWS
in turn: nobody reads a write that is then rolled back, nothing another thread writes is lost.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOCK = threading.RLock()
MAX_ITEMS = 100  # "up to 100 distinct items" per TransactWriteItems
OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})
SERIALISED = {  # backend → the methods that read or change its items (or stream records)
    "dynamodb": ("put_item", "update_item", "delete_item", "get_item", "query", "scan",
                 "batch_write_item", "transact_write_items"),
    "dynamodbstreams": ("get_shard_iterator", "get_records"),
}
MOTO: dict[str, Callable[..., Any]] = {}  # moto's own methods, as found (the bench compares)


def install() -> None:
    """Put this module's `transact_write_items` in moto's backend, and serialise every DynamoDB
    request behind one lock. Idempotent: the class is patched once per process."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if "transact_write_items" not in MOTO:
        MOTO["transact_write_items"] = DynamoDBBackend.transact_write_items
        MOTO["update_item"] = DynamoDBBackend.update_item
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]
        DynamoDBBackend.update_item = update_item  # type: ignore[method-assign,assignment]
    for backend, names in (("dynamodb", SERIALISED["dynamodb"]),
                           ("dynamodbstreams", SERIALISED["dynamodbstreams"])):
        cls = DynamoDBBackend if backend == "dynamodb" else DynamoDBStreamsBackend
        for name in names:
            method = getattr(cls, name)
            if not getattr(method, "_serialised", False):
                setattr(cls, name, _serialised(method))


def update_item(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
    """moto's UpdateItem, with one stream record for an item it creates: moto first writes the
    bare key (a key-only INSERT record), then the updated item (a second INSERT). DynamoDB
    writes one record per item modification
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html)."""
    shard = backend.get_table(table_name).stream_shard
    records = shard.items if shard is not None else []
    before = len(records)
    item = MOTO["update_item"](backend, table_name, *args, **kwargs)
    if len(records) == before + 2:  # the key-only INSERT, then the item: keep the item
        bare = records.pop(before)
        records[before].record["dynamodb"]["SequenceNumber"] = bare.record["dynamodb"][
            "SequenceNumber"]
    return item


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(self, *args, **kwargs)

    serialised._serialised = True  # type: ignore[attr-defined]
    serialised.__wrapped__ = method  # type: ignore[attr-defined]
    return serialised


@dataclass
class Journal:
    """What a transaction changed, enough to undo it: each touched item as it was before
    (None: it did not exist), and each touched stream's length before."""

    items: dict[tuple[str, Any, Any], Any] = field(default_factory=dict)
    streams: dict[str, tuple[list[Any], int]] = field(default_factory=dict)

    def touch(self, table: Any, hash_key: Any, range_key: Any, in_place: bool) -> None:
        """Remember the item before it is written. Put and Delete replace the item object, so
        the object itself is kept; Update changes it in place, so that one item is copied."""
        current = table.get_item(hash_key, range_key)
        self.items[(table.name, hash_key, range_key)] = (
            copy.deepcopy(current) if in_place and current is not None else current)
        shard = table.stream_shard
        if shard is not None and table.name not in self.streams:
            self.streams[table.name] = (shard.items, len(shard.items))

    def rollback(self, tables: dict[str, Any]) -> None:
        for (name, hash_key, range_key), before in self.items.items():
            table = tables[name]
            if range_key is None:
                place, key = table.items, hash_key
            else:
                place, key = table.items[hash_key], range_key
            if before is None:
                place.pop(key, None)
            else:
                place[key] = before
        for records, length in self.streams.values():
            del records[length:]


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems with the journal's rollback (same errors, same reasons)."""
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        TooManyTransactionsException,
        TransactionCanceledException,
    )

    if len(transact_items) > MAX_ITEMS:
        raise TooManyTransactionsException()
    with LOCK:
        actions = _validated(backend, transact_items)
        journal = Journal()
        reasons: list[tuple[Any, Any, Any]] = []
        for kind, action in actions:
            try:
                _write(backend, kind, action, journal)
                reasons.append((None, None, None))
            except MockValidationException:  # the request is refused as a whole
                journal.rollback(backend.tables)
                raise
            except ConditionalCheckFailed as failed:
                reasons.append(("ConditionalCheckFailed", failed.message,
                                getattr(failed, "old_image", None)))
            except Exception as error:  # noqa: BLE001 - reported as this item's reason, as moto
                reasons.append((type(error).__name__, str(error), None))
        if any(code is not None for code, _, _ in reasons):
            journal.rollback(backend.tables)
            raise TransactionCanceledException(reasons)


def _validated(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """One action per entry, of a known kind, each on a distinct item: checked before any
    write ("You can't target the same item with multiple operations within the same
    transaction")."""
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TransactWriteSingleOpException,
    )

    seen: set[tuple[str, str]] = set()
    actions = []
    for entry in transact_items:
        if len(entry) != 1:
            raise TransactWriteSingleOpException
        kind, action = next(iter(entry.items()))
        if kind not in OPERATIONS:
            raise ValueError(f"Unsupported transaction operation {kind}")
        table = backend.get_table(action["TableName"])
        key = action["Item"] if kind == "Put" else action["Key"]
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        target = (action["TableName"], str({n: key.get(n) for n in names}))
        if target in seen:
            raise MultipleTransactionsException()
        seen.add(target)
        actions.append((kind, action))
    return actions


def _write(backend: Any, kind: str, action: dict[str, Any], journal: Journal) -> None:
    """Check one action's condition against the item as it is, then write it (journalled)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    name = action["TableName"]
    table = backend.get_table(name)
    hash_key, range_key = backend.get_keys_value(
        table, action["Item"] if kind == "Put" else action["Key"])
    current = table.get_item(hash_key, range_key)
    condition = action.get("ConditionExpression")
    names = action.get("ExpressionAttributeNames")
    values = action.get("ExpressionAttributeValues")
    if condition is not None and not get_filter_expression(condition, names, values).expr(
            current):
        failed = ConditionalCheckFailed()
        if action.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
            failed.old_image = current.to_json()["Attributes"]  # type: ignore[attr-defined]
        raise failed
    if kind == "ConditionCheck":
        return
    journal.touch(table, hash_key, range_key, in_place=kind == "Update")
    expression = {"condition_expression": condition, "expression_attribute_names": names,
                  "expression_attribute_values": values}
    if kind == "Put":
        backend.put_item(name, action["Item"], **expression)
    elif kind == "Delete":
        backend.delete_item(name, action["Key"], **expression)
    else:
        backend.update_item(name, action["Key"], update_expression=action["UpdateExpression"],
                            **expression)
