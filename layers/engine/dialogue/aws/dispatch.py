"""The table stream's one reader (DispatchFunction): each changed row to where it is read.

DynamoDB throttles more than two readers per stream shard, so one function relays all of it:
- a new job row  → the messages queue (send_message reads it: `job_json_from_message`),
- a new timer row → the timers queue (arm reads it: `bucket_of_stream_record`),
- an outcome row, or a segment member row deleted → the bus, as a flat outcome event.
Queue messages are the stream record as it came, the format the Pipes sent before.

Records are relayed in stream order; on the first failure the rest of the batch is reported
failed (Lambda's partial batch response for streams restarts from the lowest failed sequence
number), so nothing after a failure is skipped. A relay is at least once: the messages and
timers queues' consumers are idempotent, and the shop deduplicates outcomes on their `key`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dialogue.model.outcomes import outcome_of_row
from dialogue.observability import logger


def plain(image: dict[str, Any]) -> dict[str, Any]:
    """A stream image's typed attributes ({"S": "x"}) as values. In a Lambda event a binary
    value is base64 text (kept as it is), so boto3's deserializer, made for bytes, is not used."""
    return {name: _value(typed) for name, typed in image.items()}


def _value(typed: dict[str, Any]) -> Any:
    [(kind, value)] = typed.items()
    match kind:
        case "N":
            return _number(value)
        case "NS":
            return [_number(v) for v in value]
        case "M":
            return plain(value)
        case "L":
            return [_value(v) for v in value]
        case "NULL":
            return None
    return value  # S, SS, BOOL, B, BS


def _number(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


class StreamDispatcher:
    def __init__(self, sqs: Any, events: Any, messages_url: str, timers_url: str, bus: str,
                 count: Callable[[str, int], None], source: str = "dialogue"):
        self._sqs, self._events, self._bus, self._source = sqs, events, bus, source
        self._queues = {"job": messages_url, "timer": timers_url}
        self._count = count

    def handle(self, records: list[dict[str, Any]]) -> list[str]:
        """Relay the records in order; the sequence numbers of those not relayed."""
        for n, record in enumerate(records):
            try:
                self._relay(record)
            except Exception:  # kept: retried from here, then named in the stream's DLQ
                logger.exception("stream record %s not relayed",
                                 record["dynamodb"].get("SequenceNumber"))
                self._count("StreamRecordsFailed", len(records) - n)
                return [r["dynamodb"]["SequenceNumber"] for r in records[n:]]
        return []

    def _relay(self, record: dict[str, Any]) -> None:
        change = record["dynamodb"]
        image = plain(change.get("NewImage", {}))
        kind = image.get("kind")
        if record["eventName"] == "INSERT" and kind in self._queues:
            self._sqs.send_message(QueueUrl=self._queues[kind], MessageBody=json.dumps(record))
            self._count(f"Relayed_{kind}", 1)
        outcome = outcome_of_row(record["eventName"], plain(change.get("Keys", {})), image)
        if outcome is not None:
            self._publish(type(outcome).__name__, outcome.model_dump_json(exclude_none=True))

    def _publish(self, detail_type: str, detail: str) -> None:
        result = self._events.put_events(Entries=[{
            "EventBusName": self._bus, "Source": self._source, "DetailType": detail_type,
            "Detail": detail}])
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"{detail_type} not accepted by the bus: {result['Entries']}")
        self._count(f"Published_{detail_type}", 1)
