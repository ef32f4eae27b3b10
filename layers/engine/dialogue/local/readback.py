"""Read effects back from the embedded AWS: what the demo prints and the end-to-end tests check."""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from typing import Any

from dialogue.aws.dynamo import job_from_stream_record
from dialogue.local.runtime import LocalAws
from dialogue.model.customer import CustomerState


def _items(aws: LocalAws, prefix: str) -> list[dict[str, Any]]:
    ddb, table = aws.client("dynamodb"), aws.s.name("Table")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "FilterExpression": "begins_with(pk, :p)",
                              "ExpressionAttributeValues": {":p": {"S": prefix}}}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def customers(aws: LocalAws) -> dict[str, CustomerState]:
    out = {}
    for item in _items(aws, "CUSTOMER#") + _items(aws, "GUEST#"):
        state = CustomerState.model_validate_json(zlib.decompress(item["doc"]["B"]))
        state.version = int(item["version"]["N"])
        out[state.subject] = state
    return out


def counters(aws: LocalAws) -> dict[str, dict[str, int]]:
    """activity → element → customers who reached it (the shards summed)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in _items(aws, "ACTIVITY#"):
        activity = item["pk"]["S"].removeprefix("ACTIVITY#")
        for name, value in item.items():
            if name.startswith("n_"):
                out[activity][name[2:]] += int(value["N"])
    return {a: dict(per) for a, per in out.items()}


def coupons(aws: LocalAws) -> list[dict[str, str]]:
    return [{k: v["S"] for k, v in item.items() if "S" in v} for item in _items(aws, "COUPON#")]


def segment_members(aws: LocalAws, segment: str) -> set[str]:
    ddb, table = aws.client("dynamodb"), aws.s.name("Table")
    shards = int(aws.s.resolver.parameters.get("SegmentShards", "16"))
    members: set[str] = set()
    for n in range(shards):
        page = ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": {"S": f"SEGMENT#{segment}#{n}"}})
        members |= {item["sk"]["S"] for item in page["Items"]}
    return members


def take_queue(aws: LocalAws, logical: str) -> list[dict[str, Any]]:
    """Every message on a queue (consumed), with its body and attributes."""
    sqs, url = aws.client("sqs"), aws.s.queue_url(logical)
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def queued_messages(aws: LocalAws) -> list[dict[str, Any]]:
    """The message jobs waiting for send_message, as the outbox relay put them on the queue."""
    return [job_from_stream_record(m["Body"]) for m in take_queue(aws, "MessagesQueue")]


def rejected_events(aws: LocalAws) -> list[tuple[dict[str, Any], str]]:
    return [(json.loads(m["Body"]), m.get("MessageAttributes", {}).get("reason", {})
             .get("StringValue", "")) for m in take_queue(aws, "EventsDeadLetterQueue")]
