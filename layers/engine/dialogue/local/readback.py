"""Read effects back from the embedded AWS: what the demo prints and the end-to-end tests check."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from dialogue.aws.dynamo import state_from_item
from dialogue.local.insight import scan_prefix
from dialogue.local.runtime import LocalAws
from dialogue.local.template import ACCOUNT, REGION
from dialogue.model.customer import CustomerState
from dialogue.model.routing import event_of_message


def _items(aws: LocalAws, prefix: str, table_logical: str = "Table") -> list[dict[str, Any]]:
    return scan_prefix(aws.client("dynamodb"), aws.s.name(table_logical), prefix)


def customers(aws: LocalAws) -> dict[str, CustomerState]:
    out = {}
    table = "CustomersTable"
    for item in _items(aws, "CUSTOMER#", table) + _items(aws, "GUEST#", table):
        state = state_from_item(item)
        out[state.subject] = state
    return out


def counters(aws: LocalAws) -> dict[str, dict[str, int]]:
    """activity → element → customers who reached it (the shards summed)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in _items(aws, "ACTIVITY#"):
        activity = item["pk"]["S"].removeprefix("ACTIVITY#").rsplit("#", 1)[0]
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


def take_queue(aws: LocalAws, logical: str, url: str = "") -> list[dict[str, Any]]:
    """Every message on a queue (consumed), with its body and attributes."""
    sqs, url = aws.client("sqs"), url or aws.s.queue_url(logical)
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"],
                                       MessageSystemAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def message_jobs(aws: LocalAws) -> list[dict[str, Any]]:
    """Every message job the activities queued (the outbox rows), with its status and why."""
    out = []
    for item in _items(aws, "JOB#"):
        job = json.loads(item["payload"]["S"])
        job["status"] = item["status"]["S"]
        job["reason"] = item.get("reason", {}).get("S")
        job["sent_at"] = item.get("sent_at", {}).get("S")
        out.append(job)
    return sorted(out, key=lambda j: (j["at"], j["activity_id"], j["element_id"]))


def scheduled_jobs(aws: LocalAws) -> list[dict[str, str]]:
    """The jobs waiting in the release index: their key and release time. A scan of the sparse
    index reads only the jobs in it (release_bucket is set while a job is scheduled), not the
    whole table: the simulator asks before each step, and the table grows with the run."""
    ddb, table = aws.client("dynamodb"), aws.s.name("Table")
    kwargs: dict[str, Any] = {"TableName": table, "IndexName": "release",
                              "ProjectionExpression": "pk, release_at"}
    out = []
    while True:
        page = ddb.scan(**kwargs)
        out += [{"key": i["pk"]["S"], "release_at": i["release_at"]["S"]} for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def sent_emails(aws: LocalAws) -> list[Any]:
    """What reached the embedded SES (raw MIME messages)."""
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def sent_sms(aws: LocalAws) -> list[tuple[str, str]]:
    """(phone number, text) of what reached the embedded SNS."""
    from moto.sns.models import sns_backends

    return [(number, text) for _, (number, text, *_) in
            sns_backends[ACCOUNT][REGION].sms_messages.items()]


def outcome_events(aws: LocalAws) -> list[dict[str, Any]]:
    """CouponIssued, MessageSent, MessageSuppressed, SegmentEntered, SegmentLeft, as the shop's
    rule would receive them (flat `detail`: dialogue.model.outcomes)."""
    return [json.loads(m["Body"]) for m in take_queue(aws, "", aws.outcomes_tap_url)]


def rejected_events(aws: LocalAws) -> list[tuple[dict[str, Any], str]]:
    """Events kept on the events DLQ: rejected by on_event (with the reason), or dead-lettered
    by the queue's redrive after five failed attempts (no reason: see the logs)."""
    return [(json.loads(event_of_message(m["Body"])), m.get("MessageAttributes", {})
             .get("reason", {}).get("StringValue", ""))
            for m in take_queue(aws, "EventsDeadLetterQueue")]
