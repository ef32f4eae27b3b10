"""Per-customer ordering, parallel across customers, on the route AWS documents: the identity
rules wrap each event with its group, EventsPipe puts it in that FIFO message group."""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict

from dialogue.aws.dynamo import state_from_item
from dialogue.local import readback
from dialogue.model.routing import event_of_message

from tests.e2e.conftest import ORDER, Shop


def register(shop: Shop, customer: str) -> None:
    shop.publish("CustomerRegistered", customer, event_id=f"reg-{customer}",
                 profile={"first_name": customer.title(), "email": f"{customer}@example.com"},
                 consent={"email": True, "tracking": True})


def test_each_customer_and_each_guest_has_a_message_group_of_its_own(shop: Shop):
    register(shop, "lea")
    register(shop, "jonas")
    shop.publish("ProductViewed", None, personalization="p-1", event_id="guest-view",
                 product_id="p1")
    # A login carries both ids: it is the customer's (the guest's own events stay in g#p-1).
    shop.publish("CustomerLoggedIn", "lea", personalization="p-1", event_id="lea-login")
    while shop.aws.pump_pipes():  # the pipe only: on_event has not read anything yet
        pass

    groups: dict[str, list[str]] = defaultdict(list)
    for message in readback.take_queue(shop.aws, "EventsQueue"):
        event = json.loads(event_of_message(message["Body"]))
        groups[message["Attributes"]["MessageGroupId"]].append(event["detail"]["event_id"])
        assert message["Attributes"]["MessageDeduplicationId"] == event["id"]
    assert dict(groups) == {"c#lea": ["reg-lea", "lea-login"], "c#jonas": ["reg-jonas"],
                            "g#p-1": ["guest-view"]}


def test_the_wrapped_event_reaches_on_event_as_the_shop_published_it(shop: Shop):
    register(shop, "lea")
    shop.publish("ProductViewed", None, personalization="p-1", product_id="p1")
    shop.publish("ProductViewed", None, product_id="p1", event_id="nobody")  # neither id
    shop.deliver()

    assert {"customer:lea", "guest:p-1"} <= set(readback.customers(shop.aws))
    [(event, reason)] = readback.rejected_events(shop.aws)
    assert event["detail"]["event_id"] == "nobody" and "customer_id" in reason


def test_one_customers_poisoned_event_does_not_hold_back_another_customer(shop: Shop):
    register(shop, "lea")
    register(shop, "jonas")
    shop.deliver()
    # lea's state can no longer be read: every event of hers fails on_event.
    ddb = shop.aws.client("dynamodb")
    ddb.update_item(TableName=shop.aws.s.name("CustomersTable"),
                    Key={"pk": {"S": "CUSTOMER#lea"}, "sk": {"S": "STATE"}},
                    UpdateExpression="SET doc = :junk",
                    ExpressionAttributeValues={":junk": {"B": b"not a state"}})
    shop.publish("OrderPlaced", "lea", event_id="lea-order", **ORDER)
    for n in range(3):
        shop.publish("OrderPlaced", "jonas", event_id=f"jonas-{n}", **{**ORDER,
                                                                       "order_id": f"o-{n}"})

    sqs, dlq = shop.aws.client("sqs"), shop.aws.s.queue_url("EventsDeadLetterQueue")

    def dead_lettered() -> int:
        return int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=[
            "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])

    def jonas_orders() -> int:
        item = ddb.get_item(TableName=shop.aws.s.name("CustomersTable"),
                            Key={"pk": {"S": "CUSTOMER#jonas"}, "sk": {"S": "STATE"}})["Item"]
        return len(state_from_item(item).orders)

    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(20):
            shop.aws.step()
            if jonas_orders() == 3:
                break
        # jonas's later events are applied while lea's event is still being retried
        assert jonas_orders() == 3
        assert dead_lettered() == 0
        shop.aws.drain()

    [(event, _)] = readback.rejected_events(shop.aws)
    assert event["detail"]["event_id"] == "lea-order"  # dead-lettered after five attempts
    assert jonas_orders() == 3
