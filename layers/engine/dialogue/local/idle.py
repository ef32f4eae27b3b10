"""Whether a delivery round has anything to move, asked of the embedded AWS's backends in this
process (no AWS call): a queue with no message a receive would return, or a stream with no
record after the relay's last one, is skipped.

The answer is the one the skipped call would have given, read from the same objects by the same
rule. A `ReceiveMessage` returns only messages that are visible and not delayed
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html):
moto's `Queue.messages` is that list, the one its `receive_message` walks, so an empty one
means an empty receive with nothing changed. A stream's `GetRecords` after the last sequence
number read returns the records written since
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html):
none when the shard's last sequence number is that one. When the backend cannot be read (an
unknown queue or table), the answer is "maybe": the round makes its calls as before.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dialogue.local import dynamodb_transactions, retention
from dialogue.local.template import ACCOUNT, REGION


def queue_has_receivable(queue_url: str) -> bool:
    """False only when a receive on the queue would return nothing now."""
    from moto.sqs.models import sqs_backends

    path = urlsplit(queue_url).path.strip("/").split("/")  # /<account>/<name>
    account, name = (path[-2], path[-1]) if len(path) >= 2 else (ACCOUNT, path[-1])
    try:
        queue = sqs_backends[account][REGION].get_queue(name)
    except Exception:  # not moto's queue here: ask with the call
        return True
    return bool(queue._messages) and bool(queue.messages)  # visible and not delayed


def stream_has_new(stream_arn: str, read: dict[str, str]) -> bool:
    """False only when the table's stream holds no record after `read` (shard id → last
    sequence number the relay read). Records already read are released then, as the relay's
    next GetShardIterator would have released them (local/retention.py)."""
    shard = _shard(stream_arn)
    if shard is False:
        return True
    if shard is None:  # no stream on the table: DescribeStream lists no shard
        return False
    with dynamodb_transactions.LOCK:  # not inside a transaction's write
        last = shard.starting_sequence_number + len(shard.items) - 1
        after = read.get(shard.id)
        if after is None:
            return bool(shard.items)
        if int(after) != last:
            return True
        retention.trim(shard, last)
        return False


def _shard(stream_arn: str) -> Any:
    """moto's stream shard of the table (None: none), or False when it cannot be read."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    parts = stream_arn.split(":", 5)
    try:
        backend = dynamodbstreams_backends[parts[4]][parts[3]]
        return backend._get_table_from_arn(stream_arn).stream_shard
    except Exception:  # not moto's table here: ask with the calls
        return False
