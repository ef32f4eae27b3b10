"""The DynamoDB adapter on moto: conditional writes and the effects that ride them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.model.customer import CustomerState
from dialogue.model.effects import (
    CouponIssued,
    ElementReached,
    MessageQueued,
    SegmentAdded,
    SegmentRemoved,
)
from dialogue.ports import Conflict
from moto import mock_aws

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
BASE = {"activity_id": "act", "subject": "customer:frank", "entry": 1, "at": AT}


@pytest.fixture
def db() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}])
        yield client


def items(db: Any) -> dict[str, dict[str, Any]]:
    return {f"{i['pk']['S']}|{i['sk']['S']}": i for i in db.scan(TableName="t")["Items"]}


def test_a_new_customer_is_created_then_read_back_at_version_1(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    assert state.version == 0
    state.total_spent += 10
    store.commit(state, [])

    again = store.load("customer:frank")
    assert again.version == 1 and again.total_spent == 10


def test_a_write_from_a_stale_read_is_a_conflict_and_changes_nothing(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    first, second = store.load("customer:frank"), store.load("customer:frank")
    first.order_count = 1
    store.commit(first, [])
    second.order_count = 7
    with pytest.raises(Conflict):
        store.commit(second, [MessageQueued(**BASE, element_id="m", channel="email",
                                            template="t", event_id="e")])

    assert store.load("customer:frank").order_count == 1
    assert not any(k.startswith("JOB#") for k in items(db))  # the effect did not ride alone


def test_effects_are_written_with_the_state_in_one_transaction(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    store.commit(state, [
        ElementReached(**BASE, element_id="t"), ElementReached(**BASE, element_id="m"),
        MessageQueued(**BASE, element_id="m", channel="email", template="welcome", event_id="e"),
        CouponIssued(**BASE, element_id="c", promotion="TEN", code="K7XQ2M9PLR4T",
                     expires_at=AT + timedelta(days=30)),
        SegmentAdded(**BASE, element_id="s", segment="golfers"),
    ])

    stored = items(db)
    job = next(v for k, v in stored.items() if k.startswith("JOB#act/m/customer:frank/1"))
    assert job["kind"]["S"] == "job" and '"template":"welcome"' in job["payload"]["S"]
    coupon = next(v for k, v in stored.items() if k.startswith("COUPON#"))
    assert coupon["promotion"]["S"] == "TEN" and coupon["code"]["S"] == "K7XQ2M9PLR4T"
    member = next(v for k, v in stored.items() if k.startswith("SEGMENT#golfers#"))
    assert member["sk"]["S"] == "customer:frank"
    counters = next(v for k, v in stored.items()
                    if k.startswith("ACTIVITY#act#") and k.endswith("|COUNTERS"))
    assert counters["n_t"]["N"] == "1" and counters["n_m"]["N"] == "1"


def test_removing_from_a_segment_deletes_the_member_row(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    store.commit(state, [SegmentAdded(**BASE, element_id="s", segment="golfers")])
    state = store.load("customer:frank")
    store.commit(state, [SegmentRemoved(**BASE, element_id="r", segment="golfers")])

    assert not any(k.startswith("SEGMENT#") for k in items(db))


def test_the_state_document_is_stored_compressed(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = CustomerState(subject="customer:frank")
    for n in range(200):
        state.remember(f"event-{n:04d}", AT)
    store.commit(state, [])

    raw = items(db)["CUSTOMER#frank|STATE"]["doc"]["B"]
    assert len(raw) < len(state.model_dump_json()) / 2
    assert store.load("customer:frank").processed == state.processed
