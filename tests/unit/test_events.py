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
    "CustomerDeleted": {},
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



# --- ids AWS can carry, bounds, dates, booleans -----------------------------------------------
@pytest.mark.parametrize("field", ["customer_id", "personalization_id"])
@pytest.mark.parametrize("bad", ["ann smith", "anné", "x" * 101, "tab\there"])
def test_a_person_id_an_sqs_message_group_cannot_carry_is_refused_with_why(field: str, bad: str):
    errors = errors_of(envelope("CustomerLoggedIn", **{field: bad}))

    assert [e.split(":")[0] for e in errors] == [f"$.detail.{field}"]
    assert "ASCII letters, digits or punctuation" in errors[0]
    assert "SQS message group id" in errors[0]


def test_every_punctuation_sqs_allows_is_accepted_up_to_100_characters():
    punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    ident = (punctuation + "Az09" * 20)[:100]

    parsed = event("CustomerLoggedIn", customer_id=ident)

    assert parsed.subject == f"customer:{ident}"


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                   "0001-01-01T00:00:00Z", "2200-01-01T00:00:00Z"])
def test_an_event_dated_out_of_range_is_refused_with_a_reason_not_a_crash(stamp: str):
    raw = envelope("CustomerLoggedIn")
    raw["detail"]["occurred_at"] = stamp

    errors = errors_of(raw)

    assert len(errors) == 1
    assert errors[0].startswith("$.detail.occurred_at: ")
    assert "between 1970-01-01" in errors[0]


def test_an_envelope_time_out_of_range_is_refused_too():
    raw = envelope("CustomerLoggedIn")
    raw["time"] = "9999-12-31T23:59:59-14:00"

    assert [e.split(":")[0] for e in errors_of(raw)] == ["$.time"]


@pytest.mark.parametrize("value", ["yes", "true", 1, "1"])
def test_a_consent_must_be_a_json_boolean(value: Any):
    errors = errors_of(envelope("CustomerUpdated", consent={"email": value}))

    assert [e.split(":")[0] for e in errors] == ["$.detail.consent.email"]


@pytest.mark.parametrize(("detail_type", "detail", "path"), [
    ("PageVisited", {"url": "https://s.example/?" + "u" * 2048}, "$.detail.url"),
    ("PageVisited", {"url": "https://s.example/", "referrer": "r" * 2049}, "$.detail.referrer"),
    ("PageVisited", {"url": "https://s.example/",
                     "url_parameters": {f"k{n}": "v" for n in range(21)}},
     "$.detail.url_parameters"),
    ("PageVisited", {"url": "https://s.example/", "url_parameters": {"k": "v" * 1025}},
     "$.detail.url_parameters.k"),
    ("CustomEvent", {"name": "x", "parameters": {"k" * 129: "v"}},
     "$.detail.parameters." + "k" * 129 + ".[key]"),
    ("CategoryViewed", {"category": "c" * 129}, "$.detail.category"),
    ("CategoryViewed", {"category": "c", "parent_categories": ["p"] * 21},
     "$.detail.parent_categories"),
    ("ProductViewed", {"product_id": "p", "manufacturer": "m" * 129}, "$.detail.manufacturer"),
    ("CustomerUpdated", {"profile": {"attributes": {f"a{n}": n for n in range(51)}}},
     "$.detail.profile.attributes"),
    ("CustomerUpdated", {"profile": {"attributes": {"a": "v" * 201}}},
     "$.detail.profile.attributes.a"),
    ("CustomerUpdated", {"profile": {"city": "c" * 257}}, "$.detail.profile.city"),
    ("CartUpdated", {"cart_id": "k", "lines": [{"product_id": "p", "unit_price": "1"}] * 101},
     "$.detail.lines"),
    ("OrderPlaced", {**ORDER, "promotion_codes": ["P"] * 11}, "$.detail.promotion_codes"),
    ("PageVisited", {"url": "https://s.example/" + "u" * 2000, "referrer": "r" * 2048,
                     "url_parameters": {f"k{n}": "v" * 300 for n in range(15)}}, "$.detail"),
])
def test_whatever_the_state_keeps_is_bounded_and_refused_beyond(detail_type: str,
                                                                detail: dict[str, Any], path: str):
    errors = errors_of(envelope(detail_type, **detail))

    assert path in [e.split(": ")[0] for e in errors], errors


def test_an_order_whose_lines_would_weigh_too_much_is_refused_with_its_size():
    heavy = {"product_id": "p", "unit_price": "1", "categories": ["c" * 120] * 20}

    errors = errors_of(envelope("OrderPlaced", **{**ORDER, "lines": [heavy] * 10}))

    assert len(errors) == 1
    assert errors[0].startswith("$.detail.lines: ")
    assert "at most 16384" in errors[0]
