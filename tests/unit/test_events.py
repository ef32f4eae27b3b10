"""The shop's event contract: every detail-type parses; a bad event says where it is wrong."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from dialogue.model.events import (
    DETAILS,
    OrderPlaced,
    UnknownEventType,
    event_errors,
    parse_event,
)
from pydantic import ValidationError

from tests.unit.conftest import NOW, envelope, event

ORDER: dict[str, Any] = {
    "order_id": "o1",
    "lines": [{"product_id": "p1", "unit_price": "10.00"}],
    "total": "10.00",
}

# The least each detail-type needs on top of event_id, customer_id and occurred_at.
MINIMAL: dict[str, dict[str, Any]] = {
    "CustomerRegistered": {},
    "CustomerLoggedIn": {},
    "CustomerLoggedOut": {},
    "CustomerUpdated": {},
    "OrderPlaced": ORDER,
    "CartUpdated": {"cart_id": "cart-1"},
    "ProductViewed": {"product_id": "p1"},
    "CategoryViewed": {"category": "Ski"},
    "SearchPerformed": {"query": "rossignol"},
    "PageVisited": {"url": "https://shop.example/"},
    "SocialParticipation": {"kind": "review"},
    "CustomEvent": {"name": "added_to_wish_list"},
}


def errors_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    return event_errors(caught.value)


def test_every_detail_type_has_a_minimal_example():
    assert set(MINIMAL) == set(DETAILS)


@pytest.mark.parametrize("detail_type", sorted(DETAILS))
def test_every_detail_type_parses_from_a_minimal_event(detail_type: str):
    parsed = event(detail_type, event_id="e-1", **MINIMAL[detail_type])

    assert type(parsed.detail) is DETAILS[detail_type]
    assert parsed.detail_type == detail_type
    assert parsed.detail.event_id == "e-1"
    assert parsed.detail.occurred_at == NOW
    assert parsed.subject == "customer:c1"


def test_an_order_keeps_its_money_exact():
    parsed = event("OrderPlaced", order_id="o1", total="19.99",
                   lines=[{"product_id": "p1", "unit_price": "9.995", "quantity": 2}])

    assert isinstance(parsed.detail, OrderPlaced)
    assert parsed.detail.total == Decimal("19.99")
    assert parsed.detail.lines[0].unit_price == Decimal("9.995")
    assert parsed.detail.currency == "EUR"


def test_a_guest_event_is_keyed_by_the_personalization_id():
    parsed = event("SearchPerformed", customer_id=None, personalization_id="browser-7",
                   query="ski")

    assert parsed.subject == "guest:browser-7"


def test_a_known_customer_wins_over_the_browser_id():
    parsed = event("SearchPerformed", personalization_id="browser-7", query="ski")

    assert parsed.subject == "customer:c1"


def test_a_malformed_order_line_is_reported_with_its_json_path():
    raw = envelope("OrderPlaced", order_id="o1", total="10",
                   lines=[{"product_id": "p1", "unit_price": "ten euros"}])

    errors = errors_of(raw)

    assert len(errors) == 1
    assert errors[0].startswith("$.detail.lines[0].unit_price: ")
    assert "decimal" in errors[0].lower()


def test_a_negative_price_is_rejected_at_its_path():
    raw = envelope("OrderPlaced", order_id="o1", total="10",
                   lines=[{"product_id": "p1", "unit_price": "1"},
                          {"product_id": "p2", "unit_price": "-1"}])

    errors = errors_of(raw)

    assert [e.split(":")[0] for e in errors] == ["$.detail.lines[1].unit_price"]
    assert "greater than or equal to 0" in errors[0]


def test_an_order_without_lines_is_rejected():
    errors = errors_of(envelope("OrderPlaced", order_id="o1", total="0", lines=[]))

    assert [e.split(":")[0] for e in errors] == ["$.detail.lines"]


def test_every_problem_of_an_event_is_reported_not_only_the_first():
    raw = envelope("OrderPlaced", order_id="o1", total="x",
                   lines=[{"product_id": "p1", "unit_price": "y"}])

    paths = sorted(e.split(":")[0] for e in errors_of(raw))

    assert paths == ["$.detail.lines[0].unit_price", "$.detail.total"]


def test_an_unknown_key_in_the_detail_is_rejected():
    errors = errors_of(envelope("SearchPerformed", query="ski", colour="red"))

    assert errors == ["$.detail.colour: Extra inputs are not permitted"]


def test_an_unknown_key_in_a_nested_profile_is_rejected():
    errors = errors_of(envelope("CustomerRegistered", profile={"email": "a@b.c", "mail": "x"}))

    assert errors == ["$.detail.profile.mail: Extra inputs are not permitted"]


def test_an_unknown_key_in_the_envelope_is_rejected():
    raw = envelope("CustomerLoggedIn")
    raw["colour"] = "red"

    assert errors_of(raw) == ["$.colour: Extra inputs are not permitted"]


def test_an_event_about_nobody_is_rejected():
    errors = errors_of(envelope("CustomerLoggedIn", customer_id=None))

    assert len(errors) == 1
    assert errors[0].startswith("$.detail: ")
    assert "customer_id or personalization_id is required" in errors[0]


def test_an_event_time_without_a_zone_is_rejected():
    raw = envelope("CustomerLoggedIn")
    raw["detail"]["occurred_at"] = "2025-06-15T12:00:00"

    errors = errors_of(raw)

    assert len(errors) == 1
    assert errors[0].startswith("$.detail.occurred_at: ")
    assert "timezone" in errors[0]


def test_a_social_participation_of_an_unknown_kind_is_rejected():
    errors = errors_of(envelope("SocialParticipation", kind="share"))

    assert [e.split(":")[0] for e in errors] == ["$.detail.kind"]


def test_an_unknown_detail_type_is_told_apart_from_a_malformed_event():
    with pytest.raises(UnknownEventType, match="'WishListShared'"):
        parse_event(envelope("WishListShared"))


@pytest.mark.parametrize("raw", [{}, {"detail-type": 7}, ["CustomerLoggedIn"], None])
def test_an_event_without_a_usable_detail_type_is_an_unknown_type(raw: Any):
    with pytest.raises(UnknownEventType):
        parse_event(raw)

