"""The time and segment adapters on moto: timer rows, arming buckets, the daily run, statistics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.aws.s3_catalog import S3CatalogSource
from dialogue.aws.scan import DynamoCustomerScan, DynamoDailyRuns
from dialogue.aws.stats import segment_stats
from dialogue.aws.timers import DynamoTimers, StepFunctionsWaker, bucket_of_stream_record
from dialogue.model.customer import CustomerState
from dialogue.model.effects import SegmentAdded, SegmentRemoved, WaitStarted
from dialogue.settings import BadSetting, check_send_time
from moto import mock_aws

AT = datetime(2026, 12, 1, 10, 7, tzinfo=UTC)
BASE = {"activity_id": "follow-up", "element_id": "wait-a-week", "entry": 1, "at": AT}


def _table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}])


@pytest.fixture
def db() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        _table(client, "main")
        _table(client, "customers")
        yield client


def store(db: Any) -> DynamoCustomerStore:
    return DynamoCustomerStore(db, "main", segment_shards=4, customers_table="customers",
                               bucket_minutes=15, timer_shards=4)


def test_a_wait_writes_a_timer_in_the_bucket_that_ends_after_it_is_due(db: Any) -> None:
    due = AT + timedelta(days=7)  # 10:07 → the 10:15 bucket
    state = CustomerState(subject="customer:lea")
    store(db).commit(state, [WaitStarted(subject=state.subject, due_at=due, **BASE)])

    found = [t for shard in range(4)
             for t in DynamoTimers(db, "main").page("2026-12-08T10:15:00Z", shard, None)[0]]
    assert [(t.subject, t.activity_id, t.entry, t.element_id, t.due_at) for t in found] == [
        ("customer:lea", "follow-up", 1, "wait-a-week", due)]
    # the state went to the customers table, the timer to the main table
    assert db.scan(TableName="customers")["Count"] == 1
    assert all(i["pk"]["S"].startswith("TIMER#") for i in db.scan(TableName="main")["Items"])


def test_the_daily_scan_reads_customer_states_and_their_read_units(db: Any) -> None:
    for n in range(25):
        store(db).commit(CustomerState(subject=f"customer:{n}"), [])
    seen: list[str] = []
    for segment in range(3):
        cursor: dict[str, Any] | None = None
        while True:
            states, cursor, _ = DynamoCustomerScan(db, "customers").page(segment, 3, cursor, 10)
            seen += [s.subject for s in states]
            if cursor is None:
                break
    assert sorted(seen) == sorted(f"customer:{n}" for n in range(25))


def test_the_daily_run_is_claimed_once_per_day(db: Any) -> None:
    runs = DynamoDailyRuns(db, "main")
    assert runs.claim("2026-12-01", AT.isoformat(), 16) is True
    assert runs.claim("2026-12-01", AT.isoformat(), 16) is False
    assert runs.claim("2026-12-02", AT.isoformat(), 16) is True


def test_a_daily_run_that_died_before_handing_out_its_work_is_taken_up_after_its_lease(
        db: Any) -> None:
    runs = DynamoDailyRuns(db, "main")
    assert runs.claim("2026-12-04", "2026-12-04T01:00:00+00:00", 4)  # then the function died

    assert runs.checked("2026-12-04") is False  # tomorrow's run would catch the day up
    assert not runs.claim("2026-12-04", "2026-12-04T01:05:00+00:00", 4)  # within its lease
    assert runs.claim("2026-12-04", "2026-12-04T01:11:00+00:00", 4)  # the retry, after it
    runs.handed_out("2026-12-04")
    assert runs.checked("2026-12-04") is True
    assert not runs.claim("2026-12-04", "2026-12-05T01:00:00+00:00", 4)  # done: never again


def test_segment_entries_and_exits_are_counted_per_day(db: Any) -> None:
    s = store(db)
    for n in range(3):
        state = CustomerState(subject=f"customer:{n}")
        s.commit(state, [SegmentAdded(subject=state.subject, segment="vip", **BASE)])
    state = s.load("customer:0")
    later = {**BASE, "at": AT + timedelta(days=1)}
    s.commit(state, [SegmentRemoved(subject=state.subject, segment="vip", **later)])

    stats = segment_stats(db, "main", "vip", 4, date(2026, 12, 2), days=3)
    assert stats["size"] == 2
    assert stats["days"] == [
        {"day": "2026-11-30", "size": 0, "entered": 0, "left": 0},
        {"day": "2026-12-01", "size": 3, "entered": 3, "left": 0},
        {"day": "2026-12-02", "size": 2, "entered": 0, "left": 1},
    ]


def test_a_member_row_carries_the_segment_entered_outcome(db: Any) -> None:
    state = CustomerState(subject="customer:lea")
    store(db).commit(state, [SegmentAdded(subject=state.subject, segment="vip", **BASE)])
    [member] = [i for i in db.scan(TableName="main")["Items"]
                if i["pk"]["S"].startswith("SEGMENT#")]
    assert member["outcome"]["S"] == "SegmentEntered" and member["sk"]["S"] == "customer:lea"


@mock_aws
def test_a_bucket_is_armed_once_and_a_late_timer_gets_an_execution_of_its_own() -> None:
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    iam = boto3.client("iam", region_name="eu-west-1")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = sfn.create_state_machine(name="wake", roleArn=role, definition=json.dumps(
        {"StartAt": "W", "States": {"W": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    waker = StepFunctionsWaker(sfn, arn, shards=4)
    bucket = "2026-12-08T10:15:00Z"
    now = AT

    assert waker.arm(bucket, now) == "started"
    assert waker.arm(bucket, now) == "running"  # this container remembers
    # another container: Step Functions answers a start with the same name and input as a
    # running execution with that execution, so there is still one
    assert StepFunctionsWaker(sfn, arn, 4).arm(bucket, now) == "started"
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == "wake-20261208T101500Z"
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) \
        == {"bucket": bucket, "wake_at": bucket, "shards": [0, 1, 2, 3]}

    sfn.stop_execution(executionArn=execution["executionArn"])  # the bucket has fired
    late = datetime(2026, 12, 8, 10, 16, tzinfo=UTC)
    assert StepFunctionsWaker(sfn, arn, 4).arm(bucket, late) == "late"
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_a_timer_rows_bucket_is_read_from_its_stream_record() -> None:
    body = json.dumps({"eventName": "INSERT", "dynamodb": {"NewImage": {
        "kind": {"S": "timer"}, "bucket": {"S": "2026-12-08T10:15:00Z"}}}})
    assert bucket_of_stream_record(body) == "2026-12-08T10:15:00Z"
    assert bucket_of_stream_record("not json") is None


def test_a_send_time_before_the_daily_check_is_refused() -> None:
    check_send_time("02:00", "09:00")
    check_send_time("02:00", "02:00")
    with pytest.raises(BadSetting, match="SendTime 01:30 is earlier than DailyCheckTime 02:00"):
        check_send_time("02:00", "01:30")
    with pytest.raises(BadSetting, match="not HH:MM"):
        check_send_time("2am", "09:00")


def test_orders_move_the_customer_between_rfm_bins_and_the_daily_run_merges_the_shards(
        db: Any) -> None:
    from decimal import Decimal

    from dialogue.aws.dynamo import DynamoRfm
    from dialogue.model.customer import OrderRecord

    s = store(db)
    for n, total in enumerate((Decimal(30), Decimal(300))):
        before = s.load(f"customer:{n}")
        after = before.model_copy(deep=True)
        after.orders.append(OrderRecord(order_id=f"o{n}", at=AT, total=total, lines=[]))
        after.order_count, after.total_spent = 1, total
        s.commit(after, [], before=before)
    again = s.load("customer:1")
    second = again.model_copy(deep=True)
    second.orders.append(OrderRecord(order_id="o2", at=AT + timedelta(days=1), total=Decimal(10),
                                     lines=[]))
    second.order_count, second.total_spent = 2, Decimal(310)
    s.commit(second, [], before=again)

    merged = DynamoRfm(db, "main").merged()
    assert merged == {"r_2026-12-01": 1, "r_2026-12-02": 1, "f_1": 1, "f_2": 1,
                      "m_172": 1, "m_290": 1}
    DynamoRfm(db, "main").save_snapshot("2026-12-03", merged)
    assert DynamoRfm(db, "main").snapshot("2026-12-03") == merged


ENDING = {"schema_version": 1, "id": "summer", "name": "Summer sale", "end_date": "2026-08-31",
          "elements": [{"id": "ordered", "type": "places_order", "next": "mail"},
                       {"id": "mail", "type": "send_message", "channel": "email",
                        "template": "thanks"}]}


@pytest.fixture
def catalog_bucket() -> Iterator[tuple[Any, S3CatalogSource]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="catalog",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="catalog", Key="activities/summer.json",
                      Body=json.dumps(ENDING, indent=2).encode())
        yield s3, S3CatalogSource(s3, "catalog", 60, lambda: 0.0, lambda problems: None)


def test_an_ended_activity_file_is_rewritten_inactive_and_read_again(
        catalog_bucket: tuple[Any, S3CatalogSource]) -> None:
    s3, source = catalog_bucket
    assert source.catalog().activities["summer"].state == "active"

    assert source.deactivate("summer") is True

    written = json.loads(s3.get_object(Bucket="catalog", Key="activities/summer.json")["Body"]
                         .read())
    assert written == {**ENDING, "state": "inactive"}
    assert list(written)[:4] == ["schema_version", "id", "name", "state"]
    assert source.catalog().activities["summer"].state == "inactive"
    assert source.deactivate("summer") is False  # nothing left to do


def test_an_activity_file_edited_since_it_was_read_is_not_overwritten(
        catalog_bucket: tuple[Any, S3CatalogSource]) -> None:
    s3, source = catalog_bucket
    source.catalog()
    extended = json.dumps({**ENDING, "end_date": "2026-09-30"}).encode()
    s3.put_object(Bucket="catalog", Key="activities/summer.json", Body=extended)

    assert source.deactivate("summer") is False
    assert s3.get_object(Bucket="catalog", Key="activities/summer.json")["Body"].read() == extended
    assert source.deactivate("winter") is False  # no such activity
