"""Delivery guarantees on embedded AWS: at-least-once in, exactly-once effects out."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
from dialogue import bootstrap
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.local import readback
from dialogue.model.customer import CustomerState
from dialogue.ports import Conflict

from tests.e2e.conftest import NOW, Shop

COUPON_PER_ORDER = {
    "id": "coupon-per-order", "name": "Coupon per order", "repeatable": True,
    "elements": [
        {"id": "ordered", "type": "places_order", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "THANKS-5", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "thanks"},
    ],
}
ORDER = {"order_id": "o-1", "lines": [{"product_id": "p1", "unit_price": "40"}], "total": "40"}


def test_an_event_delivered_twice_sends_one_message_and_one_coupon(shop: Shop, tmp_path: Path):
    shop.load([COUPON_PER_ORDER], tmp=tmp_path)
    first = shop.publish("OrderPlaced", "frank", **ORDER)
    shop.publish("OrderPlaced", "frank", event_id=first["event_id"], **ORDER)  # redelivery
    shop.deliver()

    assert [m["template"] for m in readback.message_jobs(shop.aws)] == ["thanks"]
    assert [c["promotion"] for c in readback.coupons(shop.aws)] == ["THANKS-5"]
    state = readback.customers(shop.aws)["customer:frank"]
    assert state.order_count == 1


def test_a_record_redelivered_by_sqs_after_success_has_no_second_effect(shop: Shop, tmp_path):
    shop.load([COUPON_PER_ORDER], tmp=tmp_path)
    body = shop.publish("OrderPlaced", "frank", **ORDER)
    envelope = {"version": "0", "id": "x", "source": "shop", "detail-type": "OrderPlaced",
                "time": NOW.isoformat(), "detail": body}
    shop.deliver()
    # Lambda crashed after committing, so SQS hands the same record over again.
    outcome = bootstrap.event_service().handle(json.dumps(envelope))

    assert outcome == "duplicate"
    assert len(readback.message_jobs(shop.aws)) == 1
    assert len(readback.coupons(shop.aws)) == 1


class _RacingStore(DynamoCustomerStore):
    """Both workers read the same version before either writes: a real lost-update race.

    The two commits are serialised here because moto's server does not isolate concurrent
    transactions from each other (DynamoDB does); the race under test is read-then-write.
    """

    def __init__(self, inner: DynamoCustomerStore, barrier: threading.Barrier):
        self.__dict__.update(inner.__dict__)
        self._barrier = barrier
        self.conflicts = 0
        self._commit_lock = threading.Lock()

    def commit(self, state, effects, before=None):  # type: ignore[no-untyped-def]
        try:
            with self._commit_lock:
                super().commit(state, effects, before)
        except Conflict:
            self.conflicts += 1
            raise

    def load(self, subject: str) -> CustomerState:
        state = super().load(subject)
        with contextlib.suppress(threading.BrokenBarrierError):
            self._barrier.wait(timeout=2)  # the retry after the conflict reads alone
        return state


def test_two_concurrent_events_for_one_customer_are_both_applied(shop: Shop, tmp_path: Path):
    shop.load([COUPON_PER_ORDER], tmp=tmp_path)
    service = bootstrap.event_service()
    barrier = threading.Barrier(2)
    store = _RacingStore(service.store, barrier)  # type: ignore[arg-type]
    service.store = store
    bodies = [json.dumps({"version": "0", "id": f"env-{n}", "source": "shop",
                          "detail-type": "OrderPlaced", "time": NOW.isoformat(),
                          "detail": {"event_id": f"ev-{n}", "customer_id": "frank",
                                     "occurred_at": NOW.isoformat(), **ORDER,
                                     "order_id": f"o-{n}"}}) for n in (1, 2)]
    outcomes: list[object] = []

    def work(body: str) -> None:
        try:
            outcomes.append(service.handle(body))
        except Exception as e:  # noqa: BLE001 - shown by the assertion below
            outcomes.append(e)

    threads = [threading.Thread(target=work, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert store.conflicts == 1  # one writer lost the race, re-read and re-decided
    assert sorted(outcomes) == ["applied", "applied"]
    state = readback.customers(shop.aws)["customer:frank"]
    assert {o.order_id for o in state.orders} == {"o-1", "o-2"}
    assert state.journeys["coupon-per-order"].entries == 2
    assert len(readback.coupons(shop.aws)) == 2
    shop.deliver()
    assert len(readback.message_jobs(shop.aws)) == 2


def test_a_malformed_event_is_dead_lettered_with_its_reason_and_the_batch_goes_on(
        shop: Shop, tmp_path: Path):
    shop.load([COUPON_PER_ORDER], tmp=tmp_path)
    shop.publish("OrderPlaced", "amelie", order_id="o-9", lines=[{"product_id": "p"}], total="5")
    shop.publish("OrderPlaced", "frank", **ORDER)
    shop.publish("SomethingNew", "frank", anything="at all")
    shop.deliver()

    rejected = readback.rejected_events(shop.aws)
    assert len(rejected) == 1
    body, reason = rejected[0]
    assert body["detail"]["customer_id"] == "amelie"
    assert "$.detail.lines[0].unit_price: Field required" in reason
    assert [m["subject"] for m in readback.message_jobs(shop.aws)] == ["customer:frank"]
    assert "customer:amelie" not in readback.customers(shop.aws)


def test_a_broken_activity_in_s3_is_skipped_and_the_others_still_run(shop: Shop, tmp_path: Path):
    broken = {**COUPON_PER_ORDER, "id": "broken", "elements": [
        {"id": "ordered", "type": "places_order", "next": "nowhere"}]}
    shop.load([COUPON_PER_ORDER, broken], tmp=tmp_path)
    shop.publish("OrderPlaced", "frank", **ORDER)
    shop.deliver()

    assert readback.counters(shop.aws).keys() == {"coupon-per-order"}
    assert len(readback.coupons(shop.aws)) == 1


def test_dialogue_serve_accepts_put_events_from_another_process(tmp_path: Path):
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialogue.local.cli", "serve", "--activities",
         str(root / "examples/activities"), "--segments", str(root / "examples/segments")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        endpoint = first.split()[3]
        bus = proc.stdout.readline().split()[3]
        table = proc.stdout.readline().split()[2]
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x",
                                        region_name="eu-west-1")
        session.client("events", endpoint_url=endpoint).put_events(Entries=[{
            "Source": "shop", "DetailType": "CustomerRegistered", "EventBusName": bus,
            "Detail": json.dumps({"event_id": "serve-1", "customer_id": "sofia",
                                  "occurred_at": "2026-11-20T10:00:00Z",
                                  "profile": {"first_name": "Sofia"}})}])
        ddb = session.client("dynamodb", endpoint_url=endpoint)
        deadline = time.monotonic() + 20
        item = None
        while time.monotonic() < deadline and item is None:
            item = ddb.get_item(TableName=table, Key={"pk": {"S": "CUSTOMER#sofia"},
                                                      "sk": {"S": "STATE"}}).get("Item")
            time.sleep(0.2)
        assert item is not None, "the served runtime did not process the event"
        assert item["version"]["N"] == "1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
