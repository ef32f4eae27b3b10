"""Newer facts win whatever the arrival order; every event is applied once within the window;
counting triggers count every occurrence, even of the same second."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import Decision, decide
from dialogue.model.activity import Activity
from dialogue.model.customer import (
    MAX_BEHAVIOUR_JSON,
    MAX_EVENTS_IN_WINDOW,
    PROCESSED_FOR,
    CustomerState,
    TooManyEvents,
)
from dialogue.model.events import MAX_ATTRIBUTES, ShopEvent

from tests.unit.conftest import NOW, activity, event

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def apply(state: CustomerState, *events: ShopEvent, catalog: Catalog | None = None,
          now: Any = None) -> tuple[CustomerState, list[Decision]]:
    """Each event decided in turn, in the order given (arrival order), at `now`."""
    decisions = []
    for ev in events:
        decision = decide(state, ev, catalog or Catalog([]), now or NOW + DAY)
        decisions.append(decision)
        state = decision.state
    return state, decisions


def fresh() -> CustomerState:
    return CustomerState(subject="customer:c1")


def registered(at: Any = NOW - DAY, **consent: bool) -> ShopEvent:
    return event("CustomerRegistered", occurred_at=at, event_id="reg-1",
                 profile={"email": "ann@example.com", "first_name": "Ann"},
                 consent=consent or {"email": True, "sms": True})


def updated(at: Any, **detail: Any) -> ShopEvent:
    return event("CustomerUpdated", occurred_at=at, **detail)


# --- consent --------------------------------------------------------------------------------
def test_a_registration_redelivered_after_hundreds_of_events_is_still_a_duplicate():
    """The window is 25 days, not the last 200 ids: a chatty customer cannot exhaust it."""
    withdrawn = updated(NOW - DAY + HOUR, consent={"email": False})
    views = [event("ProductViewed", product_id=f"p{n}", occurred_at=NOW - DAY + 2 * HOUR)
             for n in range(300)]

    state, decisions = apply(fresh(), registered(), withdrawn, *views, registered())

    assert decisions[-1].duplicate is True
    assert state.consent.email is False


def test_an_old_registration_arriving_after_the_withdrawal_does_not_turn_consent_back_on():
    withdrawn = updated(NOW - HOUR, consent={"email": False})
    late = event("CustomerRegistered", occurred_at=NOW - DAY, event_id="reg-other",
                 consent={"email": True, "sms": True}, profile={"first_name": "Old"})

    state, _ = apply(fresh(), withdrawn, late)

    assert state.consent.email is False
    assert state.consent.sms is True  # nothing newer said otherwise
    assert state.profile.first_name == "Old"  # nothing newer set it


def test_a_consent_arriving_after_a_later_withdrawal_is_ignored():
    on = updated(NOW - 2 * HOUR, consent={"email": True})
    off = updated(NOW - HOUR, consent={"email": False})

    state, _ = apply(fresh(), off, on)

    assert state.consent.email is False


def test_only_a_newer_explicit_consent_undoes_a_withdrawal():
    state, _ = apply(fresh(), registered(), updated(NOW - HOUR, consent={"email": False}),
                     updated(NOW, consent={"email": True}))

    assert state.consent.email is True


@pytest.mark.parametrize("order", [(True, False), (False, True)])
def test_on_the_same_second_a_withdrawal_wins_whatever_the_order(order: tuple[bool, bool]):
    first, second = (updated(NOW, consent={"email": value}) for value in order)

    state, _ = apply(fresh(), first, second)

    assert state.consent.email is False


# --- profile --------------------------------------------------------------------------------
def test_an_older_profile_update_never_overwrites_a_newer_one():
    newer = updated(NOW, profile={"city": "Lyon", "attributes": {"tier": "gold"}})
    older = updated(NOW - HOUR, profile={"city": "Paris", "country": "FR",
                                          "attributes": {"tier": "silver", "shoe": 42}})

    state, _ = apply(fresh(), newer, older)

    assert state.profile.city == "Lyon"
    assert state.profile.country == "FR"
    assert state.profile.attributes == {"tier": "gold", "shoe": 42}


def test_a_state_keeps_at_most_max_attributes_the_least_recently_set_leaving_first():
    first = updated(NOW - 2 * HOUR, profile={"attributes": {f"a{n}": n for n in range(30)}})
    second = updated(NOW - HOUR, profile={"attributes": {f"b{n}": n for n in range(30)}})
    again = updated(NOW, profile={"attributes": {"a0": 100}})

    state, _ = apply(fresh(), first, second, again)

    attributes = state.profile.attributes
    assert len(attributes) == MAX_ATTRIBUTES
    assert attributes["a0"] == 100 and all(f"b{n}" in attributes for n in range(30))
    assert "a1" not in attributes and "a10" not in attributes and "a11" in attributes
    assert len([k for k in state.set_at if k.startswith("attributes.")]) == MAX_ATTRIBUTES


# --- cart -----------------------------------------------------------------------------------
CART = {"cart_id": "k1", "lines": [{"product_id": "p1", "unit_price": "30"}]}
ORDER = {"order_id": "o1", "total": "30", "lines": [{"product_id": "p1", "unit_price": "30"}]}


def test_a_cart_update_arriving_after_the_order_that_emptied_it_does_not_revive_it():
    cart = event("CartUpdated", occurred_at=NOW - HOUR, **CART)
    order = event("OrderPlaced", occurred_at=NOW - HOUR + timedelta(minutes=5), **ORDER)

    state, _ = apply(fresh(), order, cart)

    assert state.cart is None


def test_a_late_order_does_not_empty_a_newer_cart():
    order = event("OrderPlaced", occurred_at=NOW - 2 * HOUR, **ORDER)
    cart = event("CartUpdated", occurred_at=NOW - HOUR, **{**CART, "cart_id": "k2"})

    state, _ = apply(fresh(), cart, order)

    assert state.cart is not None and state.cart.cart_id == "k2"
    assert state.order_count == 1


def test_an_empty_cart_sent_later_on_the_same_second_still_empties_it():
    full = event("CartUpdated", occurred_at=NOW, **CART)
    empty = event("CartUpdated", occurred_at=NOW, cart_id="k1", lines=[])

    state, _ = apply(fresh(), full, empty)
    assert state.cart is None
    state, _ = apply(fresh(), empty, full)
    assert state.cart is None  # on the same second, the emptied cart wins


# --- the exactly-once window ----------------------------------------------------------------
def test_every_id_of_the_window_is_remembered_and_more_are_refused_with_a_reason():
    state = fresh()
    for n in range(MAX_EVENTS_IN_WINDOW):
        state.remember(f"e-{n}", NOW + timedelta(seconds=n))

    assert state.has_processed("e-0") and state.has_processed(f"e-{MAX_EVENTS_IN_WINDOW - 1}")
    with pytest.raises(TooManyEvents, match=f"at most {MAX_EVENTS_IN_WINDOW}"):
        state.remember("one-more", NOW + HOUR)
    state.remember("one-more", NOW + PROCESSED_FOR + DAY)  # the window has moved on
    assert state.has_processed("one-more") and not state.has_processed("e-0")


# --- behaviour bounded in bytes -------------------------------------------------------------
def test_huge_urls_fill_the_behaviour_budget_not_the_item_the_oldest_leaving_first():
    visits = [event("PageVisited", occurred_at=NOW - DAY + n * timedelta(minutes=1),
                    url=f"https://shop.example/{n}?" + "x" * 2000,
                    url_parameters={f"k{i}": "v" * 500 for i in range(10)})
              for n in range(40)]

    state, _ = apply(fresh(), *visits)

    size = len(state.model_dump_json(include={"behaviour"}))
    assert MAX_BEHAVIOUR_JSON * 0.8 < size <= MAX_BEHAVIOUR_JSON + len('{"behaviour":}')
    assert state.behaviour[-1].fields["url"].startswith("https://shop.example/39?")
    assert len(state.behaviour) < 40


# --- counting triggers count every occurrence -------------------------------------------------
def node(ident: str, element_type: str, next: str | None = None, **options: Any) -> dict[str, Any]:
    return {"id": ident, "type": element_type, **options, **({"next": next} if next else {})}


COUPON = node("coupon", "issue_coupon", promotion="THANKS")


def coupons(decisions: list[Decision]) -> int:
    return sum(1 for d in decisions for e in d.effects if e.type == "coupon")


@pytest.mark.parametrize("trigger", [
    node("t", "wait_for_event", "coupon", event="WishListAdded"),
    node("t", "searches", "coupon", keyword={"rule": "any"}),
])
def test_a_repeatable_activity_counts_distinct_events_of_the_same_second(trigger: dict[str, Any]):
    act = activity(trigger, COUPON, repeatable=True)
    kind, detail = (("CustomEvent", {"name": "WishListAdded"}) if trigger["type"] ==
                    "wait_for_event" else ("SearchPerformed", {"query": "ski"}))
    same_second = [event(kind, occurred_at=NOW, **detail) for _ in range(3)]

    _, decisions = apply(fresh(), *same_second, catalog=Catalog([act]), now=NOW)

    assert coupons(decisions) == 3


def test_twice_in_the_same_second_counts_as_twice_and_no_occurrence_counts_for_two_entries():
    act = activity(node("t", "searches", "coupon", keyword={"rule": "any"}, times=2), COUPON,
                   repeatable=True)
    searches = [event("SearchPerformed", occurred_at=NOW, query="ski") for _ in range(5)]

    _, decisions = apply(fresh(), *searches, catalog=Catalog([act]), now=NOW)

    assert [coupons([d]) for d in decisions] == [0, 1, 0, 1, 0]


def test_promotion_checkouts_of_the_same_second_each_count():
    act = activity(node("t", "checks_out_with_promotion", "coupon", promotion="SALE"), COUPON,
                   repeatable=True)
    orders = [event("OrderPlaced", occurred_at=NOW, **{**ORDER, "order_id": f"o{n}"},
                    promotion_codes=["SALE"]) for n in range(2)]

    _, decisions = apply(fresh(), *orders, catalog=Catalog([act]), now=NOW)

    assert coupons(decisions) == 2


def test_a_customer_parked_at_a_search_goes_on_with_a_search_of_the_same_second():
    act: Activity = activity(node("r", "registers", "s"),
                             node("s", "searches", "coupon", keyword={"rule": "any"}), COUPON)

    state, decisions = apply(fresh(), registered(at=NOW),
                             event("SearchPerformed", occurred_at=NOW, query="ski"),
                             catalog=Catalog([act]), now=NOW)

    assert coupons(decisions) == 1
    assert state.journeys["act"].waiting == []
