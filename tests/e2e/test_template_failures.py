"""A template that fails for one customer, end to end on embedded AWS: the message job ends held
with the reason (what failed, in which template), nothing is sent, nothing is dead-lettered
without a reason, and the other customers' messages go out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dialogue.local import readback

from tests.e2e.conftest import ORDER, Shop

# Passes `dialogue validate` (the sample customer is "Frank"; 100 // (5 - 6) is fine), fails for
# a customer whose first name has 6 letters, and explodes for a customer whose own field asks
# for 30 million characters.
TEXT = ("Hi {{ customer.first_name }}, {{ 100 // ((customer.first_name | length) - 6) }}"
        "{{ 'x' * (customer.attributes.size | default(1) | int) }} {{ unsubscribe_url }}")
ACTIVITY = {"id": "fragile", "name": "Fragile", "repeatable": True, "elements": [
    {"id": "ordered", "type": "places_order", "next": "mail"},
    {"id": "mail", "type": "send_message", "channel": "email", "template": "fragile",
     "send_immediately": True}]}


def upload(shop: Shop, tmp: Path) -> None:
    (tmp / "fragile-activity.json").write_text(json.dumps(ACTIVITY))
    (tmp / "fragile.json").write_text(json.dumps(
        {"id": "fragile", "channel": "email", "subject": "Hello", "text": TEXT}))
    shop.aws.upload_catalog([tmp / "fragile-activity.json"], [], [tmp / "fragile.json"])


def order(shop: Shop, customer: str, **profile: Any) -> None:
    shop.publish("CustomerRegistered", customer,
                 profile={"email": f"{customer}@example.com", **profile},
                 consent={"email": True, "sms": False, "tracking": True})
    shop.publish("OrderPlaced", customer, **ORDER)


def test_a_render_failure_holds_the_message_with_its_reason(shop: Shop, tmp_path: Path):
    upload(shop, tmp_path)
    order(shop, "frank", first_name="Frank")
    order(shop, "sophie", first_name="Sophie")
    order(shop, "bigger", first_name="Bob", attributes={"size": 30_000_000})
    shop.deliver()

    jobs = {j["subject"]: j for j in readback.message_jobs(shop.aws)}
    assert jobs["customer:frank"]["status"] == "sent"
    assert jobs["customer:sophie"]["status"] == "held"
    assert jobs["customer:sophie"]["reason"] == (
        "template 'fragile': ZeroDivisionError: integer division or modulo by zero")
    assert jobs["customer:bigger"]["status"] == "held"
    assert jobs["customer:bigger"]["reason"] == (
        "template 'fragile': the repeated value would be longer than 200,000 characters")
    sent = readback.sent_emails(shop.aws)
    assert len(sent) == 1 and set(sent[0].destinations) == {"frank@example.com"}
    # Nothing went to a dead-letter queue without a reason: nothing went there at all.
    assert readback.take_queue(shop.aws, "MessagesDeadLetterQueue") == []
    assert readback.take_queue(shop.aws, "EventsDeadLetterQueue") == []
