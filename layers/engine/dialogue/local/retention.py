"""What the embedded AWS keeps, and for how long: bounded, so a long run's memory grows with its
customers, not with its events.

moto keeps everything for ever: every stream record of a table, every shard iterator handed
out, the receipt handle of every SQS message deleted. On AWS, none of these outlives a day:

* stream records are trimmed after 24 hours, and a consumer reads each once
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html:
  "TRIM_HORIZON - Start reading at the last (untrimmed) stream record ... there is a 24 hour
  limit on data retention"). The embedded AWS has one reader per stream, the stream relay
  (`local/relays.py`), which asks for an iterator AFTER the last record it read: the records up
  to that one are released then (trimmed, as AWS trims old ones: TRIM_HORIZON starts after).
* a shard iterator expires 15 minutes after it is returned (same page): the newest
  `ITERATORS` are kept, older ones are forgotten, as expired.
* a receipt handle is valid while the message is in flight; moto remembers every deleted one
  so that a second delete succeeds. The newest `DELETED_HANDLES` per queue are remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dialogue.local import dynamodb_transactions

ITERATORS = 1_000  # shard iterators kept per streams backend
DELETED_HANDLES = 10_000  # receipt handles of deleted messages remembered per queue


def install() -> None:
    """Patch moto's classes once per process (after dynamodb_transactions.install: the stream
    is trimmed under the same lock as the writes, never inside a transaction)."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    from moto.sqs.models import SQSBackend

    _wrap(DynamoDBStreamsBackend, "get_shard_iterator", _trimming_iterator)
    _wrap(DynamoDBStreamsBackend, "get_records", _bounded_records)
    _wrap(SQSBackend, "delete_message", _forgetting_deleted)
    _wrap(SQSBackend, "delete_message_batch", _forgetting_deleted)


def _wrap(cls: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    method = getattr(cls, name)
    if getattr(method, "_retention", False):
        return
    wrapped = make(method)
    wrapped._retention = True  # type: ignore[attr-defined]
    setattr(cls, name, wrapped)


def _trimming_iterator(method: Callable[..., Any]) -> Callable[..., Any]:
    def get_shard_iterator(backend: Any, arn: str, shard_id: str, shard_iterator_type: str,
                           sequence_number: str | None = None) -> Any:
        with dynamodb_transactions.LOCK:
            if shard_iterator_type == "AFTER_SEQUENCE_NUMBER" and sequence_number:
                shard = backend._get_table_from_arn(arn).stream_shard
                if shard is not None:
                    trim(shard, int(sequence_number))
            iterator = method(backend, arn, shard_id, shard_iterator_type, sequence_number)
            forget_old_iterators(backend.shard_iterators)
            return iterator

    return get_shard_iterator


def _bounded_records(method: Callable[..., Any]) -> Callable[..., Any]:
    def get_records(backend: Any, iterator_arn: str, limit: int) -> Any:
        with dynamodb_transactions.LOCK:
            page = method(backend, iterator_arn, limit)  # hands out the next iterator
            forget_old_iterators(backend.shard_iterators)
            return page

    return get_records


def trim(shard: Any, through: int) -> int:
    """Drop the shard's records up to sequence number `through`; the later ones keep their
    numbers (moto numbers a record by its place after the shard's first number)."""
    count = min(through - shard.starting_sequence_number + 1, len(shard.items))
    if count > 0:
        del shard.items[:count]
        shard.starting_sequence_number += count
    return max(count, 0)


def forget_old_iterators(iterators: dict[str, Any]) -> None:
    while len(iterators) > ITERATORS:  # dicts keep insertion order: the oldest first
        del iterators[next(iter(iterators))]


def _forgetting_deleted(method: Callable[..., Any]) -> Callable[..., Any]:
    def delete(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        result = method(backend, queue_name, *args, **kwargs)
        queue = backend.get_queue(queue_name)
        if not isinstance(queue.deleted_messages, RecentSet):
            queue.deleted_messages = RecentSet(queue.deleted_messages)
        queue.deleted_messages.bound(DELETED_HANDLES)
        return result

    return delete


class RecentSet(dict[str, None]):
    """The set moto keeps deleted receipt handles in (`in`, `update`, `add`), newest kept."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(dict.fromkeys(items))

    def add(self, item: str) -> None:
        self[item] = None

    def update(self, items: Any = (), **_: Any) -> None:  # type: ignore[override]
        for item in items:
            self[item] = None

    def bound(self, size: int) -> None:
        while len(self) > size:
            del self[next(iter(self))]
