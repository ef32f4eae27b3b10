"""A customer's state is bounded: the heaviest customer the event contract and the state's bounds
allow, built through the contract and `record`, stays under MAX_STATE_BYTES as stored."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from dialogue.aws import state_codec
from dialogue.engine.controls import MAX_KEY
from dialogue.engine.record import record
from dialogue.model.customer import (
    MAX_BEHAVIOUR_JSON,
    MAX_EVENTS_IN_WINDOW,
    MAX_ORDERS_JSON,
    MAX_SEGMENT_HISTORY,
    MAX_SENDS,
    MAX_STATE_BYTES,
    CustomerState,
    Instance,
    Journey,
    Membership,
    SegmentChange,
)
from dialogue.model.events import MAX_ATTRIBUTES, MAX_PERSON_ID, parse_event
from pydantic_core import to_json

from tests.unit.conftest import NOW, envelope

R = random.Random(7)
DYNAMODB_ITEM = 400 * 1024  # the item's limit: names and values of all its attributes
ROOM = 8 * 1024  # the item's other attributes (keys, version): a few hundred bytes today
# What a customer's catalog adds (bounded by the catalog, not by the customer): documented per
# activity entered and per segment joined in docs/events.md, "Bounds".
ACTIVITIES, SEGMENTS = 20, 20


def text(n: int) -> str:
    """`n` characters that weigh most and compress least: random 4-byte UTF-8 characters."""
    return "".join(chr(0x10000 + R.randrange(0x30000)) for _ in range(n))


def ascii_text(n: int) -> str:
    return "".join(chr(R.randrange(0x21, 0x7F)) for _ in range(n))


def ident(n: int = 128) -> str:  # an activity's, element's or segment's id (marketer-written)
    return "a" + "".join(R.choice("abcdefghijklmnopqrstuvwxyz0123456789_.:@-")
                         for _ in range(n - 1))


def apply(state: CustomerState, detail_type: str, n: int, **detail: Any) -> None:
    parsed = parse_event(envelope(detail_type, customer_id=state.customer_id,
                                  occurred_at=NOW - timedelta(minutes=n), **detail))
    record(state, parsed.detail)


def heaviest() -> CustomerState:
    state = CustomerState(subject="customer:" + ascii_text(MAX_PERSON_ID))
    apply(state, "CustomerRegistered", 10_000, consent={"email": True, "sms": True},
          profile={"email": text(254), "phone": text(32), "first_name": text(256),
                   "last_name": text(256), "country": text(64), "city": text(256),
                   "language": text(35), "birthday": "1980-01-01",
                   "attributes": {text(64): text(100) for _ in range(MAX_ATTRIBUTES)}})
    apply(state, "CustomerUpdated", 9_999,  # newer attributes: the older ones leave
          profile={"attributes": {text(64): text(100) for _ in range(MAX_ATTRIBUTES)}})
    line = {"product_id": text(30), "unit_price": "1234567890.1234", "quantity": 999_999,
            "categories": [text(20) for _ in range(5)], "manufacturer": text(20)}
    for n in range(30):  # orders near the byte bound of their lines, with every promotion
        apply(state, "OrderPlaced", 5_000 - n, order_id=text(256), total="9999999999.9999",
              lines=[line] * 22, promotion_codes=[text(64) for _ in range(10)])
    apply(state, "CartUpdated", 100, cart_id=text(256),
          lines=[{k: v for k, v in line.items() if k != "manufacturer"}] * 26)
    for n in range(60):  # the heaviest visits
        apply(state, "PageVisited", 4_000 - n, url=text(700), referrer=text(700),
              url_parameters={text(40): text(160) for _ in range(3)})
    for n in range(MAX_EVENTS_IN_WINDOW):
        state.remember(f"e-{n}", NOW)
    catalog_parts(state)
    identity_parts(state)
    return state


def identity_parts(state: CustomerState) -> None:
    """Linked browsers, and (as a guest would) held messages, each at its bound."""
    from dialogue.engine.identity import MAX_BROWSERS, MAX_HELD, MAX_HELD_JSON
    from dialogue.model.effects import MessageQueued

    state.browsers = [ascii_text(MAX_PERSON_ID) for _ in range(MAX_BROWSERS)]
    def held_message(detail: str) -> MessageQueued:
        return MessageQueued(activity_id=ident(), element_id=ident(), subject=state.subject,
                             entry=10**6, at=NOW, incarnation=text(16), channel="email",
                             template=ident(), event_id=text(64), context={"detail": detail})

    base = len(to_json(held_message("")))  # the message's own fields, whatever they become
    held = held_message(text((MAX_HELD_JSON // MAX_HELD - base - 16) // 4))
    state.held = [held] * MAX_HELD
    assert MAX_HELD_JSON - 1000 < len(to_json(state.held)) <= MAX_HELD_JSON


def catalog_parts(state: CustomerState) -> None:
    for _ in range(SEGMENTS):
        state.segments[ident()] = Membership(since=NOW, until=NOW, by=ident())
    state.segment_history = [SegmentChange(segment=ident(), change="removed", at=NOW, by=ident(),
                                           element=ident()) for _ in range(MAX_SEGMENT_HISTORY)]
    # Frequency caps' send log, full in both channels.
    state.sends = {c: [int(NOW.timestamp()) - n for n in range(MAX_SENDS)]
                   for c in ("email", "sms")}
    for _ in range(ACTIVITIES):
        state.journeys[ident()] = Journey(entries=10**6, last_entered_at=NOW, seen_at_entry=9,
                                          waiting=[Instance(entry=10**6, element=ident(),
                                                            since=NOW, due_at=NOW, seen=9,
                                                            holdout=True, held=True,
                                                            key=text(MAX_KEY))],
                                          version="ffffffff")


def test_the_heaviest_customer_stays_under_the_documented_size_below_dynamodbs_limit():
    state = heaviest()

    stored = state_codec.encode(state)
    document = state.model_dump_json(exclude={"version"}, exclude_defaults=True).encode()

    assert len(stored) <= len(document) + 64  # compression never costs more than its framing
    assert len(document) < MAX_STATE_BYTES < DYNAMODB_ITEM - ROOM
    assert state_codec.decode(stored).profile == state.profile  # and it reads back


def test_the_heaviest_customer_is_heavy_in_every_bounded_part():
    """The bounds are reached, not avoided: else the test above proves little."""
    state = heaviest()

    assert len(state.processed) == MAX_EVENTS_IN_WINDOW
    assert len(state.profile.attributes) == MAX_ATTRIBUTES
    for part, bound in (("behaviour", MAX_BEHAVIOUR_JSON), ("orders", MAX_ORDERS_JSON)):
        size = len(state.model_dump_json(include={part}).encode())
        assert 0.7 * bound < size <= bound + 20, part
    assert state.cart is not None and len(state.cart.lines) == 26
