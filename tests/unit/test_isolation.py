"""One activity's failure never cancels another's effects: the failing one is skipped for that
event (its changes undone, the customer left where they were in it) and reported."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue.engine.catalog import Catalog
from dialogue.engine.daily import daily
from dialogue.engine.decide import Decision, decide
from dialogue.engine.timers import TimerRef
from dialogue.engine.wake import wake
from dialogue.model.activity import Activity, Wait
from dialogue.model.customer import CustomerState
from dialogue.model.effects import CouponIssued, MessageQueued, SegmentAdded, WaitStarted
from dialogue.model.events import Profile
from dialogue.services import apply

from tests.unit.conftest import NOW, event

DAY = timedelta(days=1)
MAIL = {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"}
THANKS = {"id": "thanks", "name": "Thanks", "repeatable": True, "elements": [
    {"id": "ordered", "type": "places_order", "next": "coupon"},
    {"id": "coupon", "type": "issue_coupon", "promotion": "THANKS", "next": "mail"}, MAIL]}


def poisoned(ident: str, *elements: dict[str, Any], amount: int = 3_000_000,
             unit: str = "days") -> Activity:
    """An activity read before waits were bounded: its wait `pause` overflows in `decide`."""
    act = Activity.model_validate({"id": ident, "name": ident, "repeatable": True,
                                   "elements": list(elements)})
    bad = [Wait.model_construct(**{**el.model_dump(), "amount": amount, "unit": unit})
           if el.id == "pause" else el for el in act.elements]
    return act.model_copy(update={"elements": bad})


def on_order(ident: str = "poisoned", **wait: Any) -> Activity:
    """Order → add to `skiers` → the overflowing wait → mail."""
    return poisoned(ident, {"id": "ordered", "type": "places_order", "next": "add"},
                    {"id": "add", "type": "add_to_segment", "segment": "skiers", "next": "pause"},
                    {"id": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "mail"},
                    MAIL, **wait)


def kinds(decision: Decision) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in decision.effects:
        if e.type != "reached":
            out.setdefault(e.activity_id, []).append(e.type)
    return out


ORDER = {"order_id": "o-1", "total": "40",
         "lines": [{"product_id": "p1", "unit_price": "40", "categories": ["Ski"]}]}


@pytest.mark.parametrize(("amount", "unit", "error"), [(3_000_000, "days", "OverflowError"),
                                                       (1_000_000, "months", "ValueError")])
@pytest.mark.parametrize("poisoned_first", [True, False])
def test_an_activity_that_fails_on_an_order_leaves_the_others_effects(
        poisoned_first: bool, amount: int, unit: str, error: str):
    good, bad = Activity.model_validate(THANKS), on_order(amount=amount, unit=unit)
    catalog = Catalog([bad, good] if poisoned_first else [good, bad])
    order = event("OrderPlaced", **ORDER)

    decision = decide(CustomerState(subject="customer:c1"), order, catalog, NOW)

    assert kinds(decision) == {"thanks": ["coupon", "message"]}
    [failure] = decision.errors
    assert (failure.activity_id, failure.element_id, failure.event_id) == (
        "poisoned", "pause", order.detail.event_id)
    assert failure.reason.startswith(error)
    # Skipped: never entered, and what it did before failing is undone.
    assert "poisoned" not in decision.state.journeys
    assert decision.state.segments == {} and decision.state.segment_history == []
    assert decision.state.journeys["thanks"].entries == 1
    assert decision.state.has_processed(order.detail.event_id)  # applied: never retried


def test_a_customer_waiting_in_a_failing_activity_stays_there_and_the_others_go_on():
    bad = poisoned("poisoned",
                   {"id": "registered", "type": "registers", "next": "go"},
                   {"id": "go", "type": "wait_for_event", "event": "Go", "next": "add"},
                   {"id": "add", "type": "add_to_segment", "segment": "skiers", "next": "pause"},
                   {"id": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "mail"},
                   MAIL)
    good = Activity.model_validate({"id": "good", "name": "good", "elements": [
        {"id": "go", "type": "wait_for_event", "event": "Go", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "GO"}]})
    catalog = Catalog([bad, good])
    parked = decide(CustomerState(subject="customer:c1"), event("CustomerRegistered"),
                    catalog, NOW).state
    assert [i.element for i in parked.journeys["poisoned"].waiting] == ["go"]

    go = event("CustomEvent", name="Go", occurred_at=NOW + DAY)
    decision = decide(parked, go, catalog, NOW + DAY)

    assert kinds(decision) == {"good": ["coupon"]}
    assert [(e.activity_id, e.element_id) for e in decision.errors] == [("poisoned", "pause")]
    assert [i.element for i in decision.state.journeys["poisoned"].waiting] == ["go"]
    assert decision.state.segments == {}


def test_a_timer_that_fails_leaves_the_customer_waiting_and_reports_why():
    bad = poisoned("poisoned",
                   {"id": "registered", "type": "registers", "next": "first"},
                   {"id": "first", "type": "wait", "amount": 1, "unit": "days", "next": "pause"},
                   {"id": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "mail"},
                   MAIL)
    catalog = Catalog([bad])
    registered = decide(CustomerState(subject="customer:c1"), event("CustomerRegistered"),
                        catalog, NOW)
    [started] = [e for e in registered.effects if isinstance(e, WaitStarted)]

    woken = wake(registered.state, catalog, TimerRef.from_effect(started), NOW + DAY)

    assert woken.duplicate and woken.effects == []
    assert woken.state is registered.state  # nothing written: still waiting at `first`
    assert [i.element for i in woken.state.journeys["poisoned"].waiting] == ["first"]
    [failure] = woken.errors
    assert (failure.element_id, failure.event_id) == ("pause", "timer:poisoned/1/first")


def test_a_failing_daily_activity_does_not_stop_the_others_of_the_daily_check():
    birthday = {"id": "born", "type": "birthday", "next": "pause"}
    bad = poisoned("poisoned", birthday,
                   {"id": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "mail"},
                   MAIL)
    good = Activity.model_validate({"id": "good", "name": "good", "elements": [
        {**birthday, "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "BIRTHDAY"}]})
    state = CustomerState(subject="customer:c1", profile=Profile(birthday=date(1990, 6, 15)))

    decision = daily(state, Catalog([bad, good]), NOW, ZoneInfo("UTC"))

    assert kinds(decision) == {"good": ["coupon"]}
    assert [(e.activity_id, e.element_id) for e in decision.errors] == [("poisoned", "pause")]
    assert "poisoned" not in decision.state.journeys


class _Store:
    def __init__(self) -> None:
        self.committed: list[Any] = []

    def load(self, subject: str) -> CustomerState:
        return CustomerState(subject=subject)

    def commit(self, state: CustomerState, effects: list[Any],
               before: CustomerState | None = None) -> None:
        self.committed.append(effects)


def test_the_service_commits_the_good_effects_and_logs_and_counts_the_failure(
        caplog: pytest.LogCaptureFixture):
    catalog = Catalog([on_order(), Activity.model_validate(THANKS)])
    order = event("OrderPlaced", **ORDER)
    store, counted = _Store(), {}

    def count(name: str, n: int) -> None:
        counted[name] = counted.get(name, 0) + n

    with caplog.at_level(logging.ERROR, logger="dialogue"):
        apply(store, "customer:c1", lambda s: decide(s, order, catalog, NOW), count)

    [effects] = store.committed
    assert {type(e) for e in effects} >= {CouponIssued, MessageQueued}
    assert not any(isinstance(e, SegmentAdded) for e in effects)
    assert counted["ActivityErrors"] == 1
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith(
        f"activity skipped: activity poisoned : element pause : event {order.detail.event_id} : "
        "OverflowError")
