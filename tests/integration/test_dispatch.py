"""The table stream's one reader on moto: rows the store writes, relayed where they are read, and
outcome events whose detail is flat and matches docs/schema/outcome.schema.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from dialogue.aws.dispatch import StreamDispatcher
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.aws.jobs import DynamoJobs
from dialogue.aws.timers import bucket_of_stream_record
from dialogue.delivery.jobs import Claimed, JobStatus
from dialogue.delivery.service import job_json_from_message
from dialogue.model.effects import CouponIssued, MessageQueued, SegmentAdded, SegmentRemoved
from moto import mock_aws

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
BASE = {"activity_id": "act", "subject": "customer:frank", "entry": 1, "at": AT}
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schema" /
                     "outcome.schema.json").read_text())


class Aws:
    def __init__(self) -> None:
        self.db = boto3.client("dynamodb", region_name="eu-west-1")
        table = self.db.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        self.stream = table["TableDescription"]["LatestStreamArn"]
        self.sqs = boto3.client("sqs", region_name="eu-west-1")
        self.messages = self.sqs.create_queue(QueueName="messages")["QueueUrl"]
        self.timers = self.sqs.create_queue(QueueName="timers")["QueueUrl"]
        self.outcomes = self.sqs.create_queue(QueueName="outcomes")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.outcomes, AttributeNames=[
            "QueueArn"])["Attributes"]["QueueArn"]
        self.events = boto3.client("events", region_name="eu-west-1")
        self.events.create_event_bus(Name="bus")
        self.events.put_rule(Name="tap", EventBusName="bus",
                             EventPattern=json.dumps({"source": ["dialogue"]}))
        self.events.put_targets(Rule="tap", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
        self.counted: dict[str, int] = {}

    def dispatcher(self, events: Any = None) -> StreamDispatcher:
        def count(name: str, n: int) -> None:
            self.counted[name] = self.counted.get(name, 0) + n

        return StreamDispatcher(self.sqs, events or self.events, self.messages, self.timers,
                                "bus", count)

    def records(self) -> list[dict[str, Any]]:
        """The table's stream records (moto's decorator mode has no DynamoDB Streams API: read
        its backend, as its server mode's GetRecords does)."""
        from moto.dynamodb.models import dynamodb_backends

        shard = dynamodb_backends["123456789012"]["eu-west-1"].tables["t"].stream_shard
        records = [{**r, "eventSourceARN": self.stream} for r in
                   (i.to_json() for i in shard.items)]
        return list(json.loads(json.dumps(records, default=str)))

    def bodies(self, url: str) -> list[str]:
        out = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []):
            for m in messages:
                out.append(m["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


def test_rows_reach_their_readers_and_outcomes_are_flat_documented_details(aws: Aws) -> None:
    store = DynamoCustomerStore(aws.db, "t", segment_shards=4, timer_shards=2)
    state = store.load("customer:frank")
    job = MessageQueued(**BASE, element_id="m", channel="email", template="welcome",
                        event_id="e")
    store.commit(state, [
        job, CouponIssued(**BASE, element_id="c", promotion="TEN", code="K7XQ2M9PLR4T",
                          expires_at=AT + timedelta(days=30)),
        SegmentAdded(**BASE, element_id="s", segment="vip", until=AT + timedelta(days=7))])
    state = store.load("customer:frank")
    store.commit(state, [SegmentRemoved(**BASE, element_id="r", segment="vip")])
    DynamoJobs(aws.db, "t").finish(job.key, JobStatus.SUPPRESSED, AT, "no consent")

    assert aws.dispatcher().handle(aws.records()) == []

    [queued] = aws.bodies(aws.messages)
    assert MessageQueued.model_validate_json(job_json_from_message(queued)) == job  # as sent
    events = [json.loads(b) for b in aws.bodies(aws.outcomes)]
    by_type = {e["detail-type"]: e["detail"] for e in events}
    assert sorted(by_type) == ["CouponIssued", "MessageSuppressed", "SegmentEntered",
                               "SegmentLeft"]
    for detail in by_type.values():
        jsonschema.validate(detail, SCHEMA)
        assert not any(isinstance(v, dict) for v in detail.values())  # no {"S": ...}
    assert by_type["CouponIssued"]["code"] == "K7XQ2M9PLR4T"
    assert by_type["SegmentEntered"] == {"customer": "customer:frank", "segment": "vip",
                                         "since": "2026-12-01T10:00:00Z", "by": "act",
                                         "until": "2026-12-08T10:00:00Z"}
    assert by_type["SegmentLeft"] == {"customer": "customer:frank", "segment": "vip"}
    assert by_type["MessageSuppressed"]["reason"] == "no consent"
    assert by_type["MessageSuppressed"]["key"] == job.key


def test_an_unknown_outcome_and_a_failure_are_published_flat(aws: Aws) -> None:
    store = DynamoCustomerStore(aws.db, "t", segment_shards=4, timer_shards=2)
    jobs = DynamoJobs(aws.db, "t")
    sent = [MessageQueued(**{**BASE, "entry": n}, element_id="m", channel="email",
                          template="welcome", event_id=f"e{n}") for n in (1, 2)]
    store.commit(store.load("customer:frank"), list(sent))
    for job, status in zip(sent, (JobStatus.UNKNOWN, JobStatus.FAILED), strict=True):
        assert jobs.claim(job.key, "a1", AT, AT + timedelta(minutes=1), "ses") == Claimed("a1")
        assert jobs.settle(job.key, "a1", status, AT, f"{status} for a reason")
        assert jobs.reported(job.key, status, AT)

    assert aws.dispatcher().handle(aws.records()) == []

    events = [json.loads(b) for b in aws.bodies(aws.outcomes)]
    by_type = {e["detail-type"]: e["detail"] for e in events}
    assert sorted(by_type) == ["MessageOutcomeUnknown", "MessageSuppressed"]
    for detail in by_type.values():
        jsonschema.validate(detail, SCHEMA)
    assert by_type["MessageOutcomeUnknown"]["reason"] == "unknown for a reason"
    assert by_type["MessageSuppressed"]["status"] == "failed"


def test_a_timer_row_reaches_the_arm_function_as_it_reads_it(aws: Aws) -> None:
    aws.db.put_item(TableName="t", Item={"pk": {"S": "TIMER#2026-12-01T10:15:00Z#0"},
                                         "sk": {"S": "k"}, "kind": {"S": "timer"},
                                         "bucket": {"S": "2026-12-01T10:15:00Z"}})
    assert aws.dispatcher().handle(aws.records()) == []
    [body] = aws.bodies(aws.timers)
    assert bucket_of_stream_record(body) == "2026-12-01T10:15:00Z"


def test_a_failure_reports_that_record_and_every_later_one_nothing_earlier(aws: Aws) -> None:
    for n in range(3):
        aws.db.put_item(TableName="t", Item={"pk": {"S": f"COUPON#{n}"}, "sk": {"S": "COUPON"},
                                             "kind": {"S": "coupon"},
                                             "outcome": {"S": "CouponIssued"},
                                             "subject": {"S": "customer:frank"},
                                             "activity_id": {"S": "a"}, "element_id": {"S": "c"},
                                             "promotion": {"S": "P"}, "code": {"S": f"C{n}"},
                                             "issued_at": {"S": "2026-12-01T10:00:00+00:00"},
                                             "expires_at_iso": {"S": "2026-12-31T10:00:00Z"}})
    records = aws.records()

    class SecondFails:
        calls = 0

        def put_events(self, **kwargs: Any) -> dict[str, Any]:
            SecondFails.calls += 1
            if SecondFails.calls == 2:
                return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
            return dict(aws.events.put_events(**kwargs))

    failed = aws.dispatcher(SecondFails()).handle(records)

    assert failed == [r["dynamodb"]["SequenceNumber"] for r in records[1:]]
    assert [json.loads(b)["detail"]["code"] for b in aws.bodies(aws.outcomes)] == ["C0"]
    assert aws.counted["StreamRecordsFailed"] == 2
