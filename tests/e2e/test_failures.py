"""Failures on embedded AWS: a poisoned event goes to the dead-letter queue alone with its reason,
a customer whose state was lost starts again cleanly, and an order whose effects exceed one
DynamoDB transaction is applied whole, also when the commit dies halfway and is retried."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dialogue import identity
from dialogue.aws import keys
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.local import readback

from tests.e2e.conftest import EXAMPLES, ORDER, THANKS_BY_MAIL, Shop


def load(shop: Shop, tmp: Path, *activities: dict[str, Any]) -> None:
    shop.load(list(activities), tmp=tmp)
    shop.aws.upload_catalog([], [], sorted((EXAMPLES / "templates").glob("*.json")))


def register(shop: Shop, customer: str) -> None:
    shop.publish("CustomerRegistered", customer,
                 profile={"first_name": customer.title(), "email": f"{customer}@example.com",
                          "country": "FR"},
                 consent={"email": True, "sms": False, "tracking": True})


def dead_letters(shop: Shop) -> list[dict[str, Any]]:
    return readback.take_queue(shop.aws, "EventsDeadLetterQueue")


def test_a_poisoned_event_goes_to_the_dead_letter_queue_alone_with_its_reason(
        shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    load(shop, tmp_path, THANKS_BY_MAIL)
    register(shop, "frank")
    shop.deliver()
    real_decide = identity.decide  # where on_event decides (`dialogue.identity`)

    def decide(state: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        if event.detail.event_id == "order-3":
            raise RuntimeError("this order breaks the engine")
        return real_decide(state, event, *args, **kwargs)

    monkeypatch.setattr(identity, "decide", decide)
    for n in range(1, 9):
        shop.publish("OrderPlaced", "frank", event_id=f"order-{n}",
                     **{**ORDER, "order_id": f"o-{n}"})
    with caplog.at_level(logging.ERROR, logger="dialogue"):
        shop.deliver()

    [letter] = dead_letters(shop)
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert '"order-3"' in letter["Body"]  # the event as it came: a redrive replays it
    assert attributes["reason"] == "RuntimeError: this order breaks the engine"
    assert attributes["kind"] == "poisoned"
    frank = readback.customers(shop.aws)["customer:frank"]
    assert frank.order_count == 7  # every other order applied, the later ones too
    assert len(readback.coupons(shop.aws)) == 7
    failures = [r for r in caplog.records if r.levelno == logging.ERROR
                and "this order breaks the engine" in r.getMessage()]
    assert len(failures) == 5  # each receive, the last one dead-lettered
    assert all(r.exc_info and getattr(r, "shop_event_id", None) == "order-3" for r in failures)
    assert "dead-lettered" in failures[-1].getMessage()


def test_a_customer_whose_state_was_lost_gets_new_coupons_and_messages(
        shop: Shop, tmp_path: Path) -> None:
    load(shop, tmp_path, THANKS_BY_MAIL)
    register(shop, "frank")
    shop.publish("OrderPlaced", "frank", **ORDER)
    shop.deliver()
    ddb = shop.aws.client("dynamodb")
    ddb.delete_item(TableName=shop.aws.s.name("CustomersTable"),
                    Key=keys.state_key("customer:frank"))  # a restore, a deletion

    register(shop, "frank")
    shop.publish("OrderPlaced", "frank", **{**ORDER, "order_id": "o-2"})
    shop.deliver()

    assert dead_letters(shop) == []
    assert len(readback.coupons(shop.aws)) == 2
    jobs = readback.message_jobs(shop.aws)
    assert [j["status"] for j in jobs] == ["sent", "sent"]
    assert len(readback.sent_emails(shop.aws)) == 2


def many_thanks(n: int) -> list[dict[str, Any]]:
    """n activities that each issue a coupon and send an e-mail on an order."""
    return [{**THANKS_BY_MAIL, "id": f"thanks-{i:02d}", "name": f"Thanks {i}",
             "elements": [{**e, "promotion": f"THANKS-{i:02d}"} if e["id"] == "coupon" else e
                          for e in THANKS_BY_MAIL["elements"]]} for i in range(n)]


def dies_once(monkeypatch: pytest.MonkeyPatch, when: Callable[[int, int], bool]) -> list[int]:
    """The store's n-th transaction (of `total`) raises once, as a function killed there."""
    real = DynamoCustomerStore._transact
    calls: list[int] = []

    def transact(self: Any, subject: str, items: list[Any], state_first: bool = False) -> None:
        calls.append(len(items))
        if len(calls) == 1 and when(len(items), int(state_first)):
            raise RuntimeError("killed between the transactions")
        real(self, subject, items, state_first)

    monkeypatch.setattr(DynamoCustomerStore, "_transact", transact)
    return calls


@pytest.mark.parametrize("killed", ["before the state", "after the state"])
def test_an_order_beyond_one_transaction_is_applied_whole_also_when_killed_halfway(
        shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: str) -> None:
    load(shop, tmp_path, *many_thanks(34))
    register(shop, "frank")
    shop.deliver()
    calls: list[int] = []
    if killed == "before the state":
        calls = dies_once(monkeypatch, lambda n, state: bool(state))
    else:  # the state committed, the counters after it not yet
        real = DynamoCustomerStore._transact

        def transact(self: Any, subject: str, items: list[Any], state_first: bool = False) -> None:
            real(self, subject, items, state_first)
            calls.append(len(items))
            if len(calls) == 1:
                raise RuntimeError("killed between the transactions")

        monkeypatch.setattr(DynamoCustomerStore, "_transact", transact)
    shop.publish("OrderPlaced", "frank", **ORDER)
    shop.deliver()

    assert max(calls) <= 100  # DynamoDB's limit, which moto does not enforce
    assert len(calls) == (3 if killed == "before the state" else 1)  # the last one never ran
    coupons = readback.coupons(shop.aws)
    assert sorted(c["promotion"] for c in coupons) == [f"THANKS-{i:02d}" for i in range(34)]
    jobs = readback.message_jobs(shop.aws)
    assert sorted(j["activity_id"] for j in jobs) == [f"thanks-{i:02d}" for i in range(34)]
    assert len(readback.sent_emails(shop.aws)) == 34
    assert dead_letters(shop) == []
    assert readback.customers(shop.aws)["customer:frank"].order_count == 1
