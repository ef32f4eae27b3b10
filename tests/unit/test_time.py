"""Time: waits, timeouts, test mode, timers and the daily check, as a marketer expects them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue.engine.catalog import Catalog
from dialogue.engine.checks import Problem, load_catalog
from dialogue.engine.daily import LATE_EVENTS, daily, expired
from dialogue.engine.decide import Decision, decide
from dialogue.engine.timers import TimerRef, bucket_end
from dialogue.engine.wake import wake
from dialogue.local.simulate import SimulatedClock
from dialogue.model.activity import Activity
from dialogue.model.customer import (
    CartState,
    CustomerState,
    Instance,
    LineRecord,
    Membership,
)
from dialogue.model.effects import (
    ElementReached,
    MessageQueued,
    SegmentRemoved,
    WaitStarted,
)
from dialogue.model.events import Profile, ShopEvent
from dialogue.services import DailyCheck

from tests.unit.conftest import NOW, activity, event

DAY = timedelta(days=1)
PARIS = ZoneInfo("Europe/Paris")


# --- builders ----------------------------------------------------------------------------------
def node(ident: str, element_type: str, /, next: str | None = None,
         **options: Any) -> dict[str, Any]:
    return {"id": ident, "type": element_type, **options,
            **({"next": next} if next is not None else {})}


def mail(ident: str = "mail", template: str = "welcome", next: str | None = None):
    return node(ident, "send_message", next, channel="email", template=template)


def customer(**fields: Any) -> CustomerState:
    return CustomerState(subject="customer:c1", **fields)


def member_of(*segments: str, **fields: Any) -> CustomerState:
    return customer(segments={s: Membership(since=NOW - 30 * DAY) for s in segments}, **fields)


def decided(act: Activity | list[Activity], ev: ShopEvent,
            state: CustomerState | None = None) -> Decision:
    acts = act if isinstance(act, list) else [act]
    return decide(state or customer(), ev, Catalog(acts), ev.detail.occurred_at)


def actions(decision: Decision) -> list[str]:
    """The elements that acted (counters and timers left out), in order."""
    return [e.element_id for e in decision.effects
            if not isinstance(e, ElementReached | WaitStarted)]


def timer_of(decision: Decision) -> TimerRef:
    [started] = [e for e in decision.effects if isinstance(e, WaitStarted)]
    return TimerRef.from_effect(started)


def check_daily(acts: Activity | list[Activity], state: CustomerState, at: datetime,
                zone: ZoneInfo = PARIS) -> Decision:
    return daily(state, Catalog(acts if isinstance(acts, list) else [acts]), at, zone)


def each_day(acts: Activity | list[Activity], state: CustomerState,
             *days: datetime) -> list[Decision]:
    """The daily check on each day in turn, the state carried over."""
    out = []
    for at in days:
        decision = check_daily(acts, state, at)
        out.append(decision)
        state = decision.state
    return out


def at_two(day: date, zone: ZoneInfo = PARIS, fold: int = 0) -> datetime:
    """02:00 on `day` in `zone`, as the scheduler fires it, in UTC."""
    return datetime.combine(day, time(2), zone).replace(fold=fold).astimezone(UTC)


# --- waits -------------------------------------------------------------------------------------
WAIT_THEN_MAIL = [node("registered", "registers", "wait"),
                  node("wait", "wait", "mail", amount=3, unit="days"), mail()]


@pytest.mark.parametrize(("amount", "unit", "start", "due"), [
    (90, "minutes", NOW, NOW + timedelta(minutes=90)),
    (5, "hours", NOW, NOW + timedelta(hours=5)),
    (3, "days", NOW, NOW + 3 * DAY),
    (2, "weeks", NOW, NOW + 14 * DAY),
    (1, "months", datetime(2025, 1, 31, 9, 30, tzinfo=UTC), datetime(2025, 2, 28, 9, 30,
                                                                       tzinfo=UTC)),
    (1, "months", datetime(2024, 1, 31, 9, 30, tzinfo=UTC), datetime(2024, 2, 29, 9, 30,
                                                                       tzinfo=UTC)),
])
def test_a_wait_lasts_its_amount_of_units(amount: int, unit: str, start: datetime,
                                          due: datetime):
    act = activity(node("registered", "registers", "wait"),
                   node("wait", "wait", "mail", amount=amount, unit=unit), mail())

    decision = decided(act, event("CustomerRegistered", occurred_at=start))

    assert timer_of(decision).due_at == due
    assert decision.state.journeys["act"].waiting[0].due_at == due


def test_a_wait_in_days_ends_at_the_same_local_time_across_the_spring_change():
    act = activity(*WAIT_THEN_MAIL, time_zone="Europe/Paris")
    saturday_10h = datetime(2025, 3, 29, 10, tzinfo=PARIS)  # clocks go forward on Sunday

    decision = decided(act, event("CustomerRegistered", occurred_at=saturday_10h))

    assert timer_of(decision).due_at == datetime(2025, 4, 1, 10, tzinfo=PARIS)
    assert timer_of(decision).due_at - saturday_10h == 3 * DAY - timedelta(hours=1)


def test_in_test_mode_every_wait_and_timeout_lasts_its_minutes():
    act = activity(node("registered", "registers", "wait"),
                   node("wait", "wait", "ordered", amount=4, unit="months"),
                   node("ordered", "places_order", "mail",
                        timeout={"amount": 7, "unit": "days", "next": "mail"}),
                   mail(), test_mode={"wait_minutes": 5})

    registered = decided(act, event("CustomerRegistered"))
    resumed = wake(registered.state, Catalog([act]), timer_of(registered),
                   NOW + timedelta(minutes=5))

    assert timer_of(registered).due_at == NOW + timedelta(minutes=5)
    assert timer_of(resumed).due_at == NOW + timedelta(minutes=10)


@pytest.mark.parametrize("minutes", [0, 1441])
def test_test_mode_takes_one_minute_to_one_day(minutes: int):
    with pytest.raises(ValueError, match="wait_minutes"):
        activity(*WAIT_THEN_MAIL, test_mode={"wait_minutes": minutes})


# --- timers and buckets ------------------------------------------------------------------------
@pytest.mark.parametrize(("due", "minutes", "end"), [
    (datetime(2026, 12, 8, 10, 7, tzinfo=UTC), 15, datetime(2026, 12, 8, 10, 15, tzinfo=UTC)),
    (datetime(2026, 12, 8, 10, 15, tzinfo=UTC), 15, datetime(2026, 12, 8, 10, 15, tzinfo=UTC)),
    (datetime(2026, 12, 8, 10, 15, 0, 1, tzinfo=UTC), 15,
     datetime(2026, 12, 8, 10, 30, tzinfo=UTC)),
    (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), 15, datetime(2027, 1, 1, tzinfo=UTC)),
    (datetime(2026, 12, 8, 11, 7, tzinfo=PARIS), 15, datetime(2026, 12, 8, 10, 15, tzinfo=UTC)),
    (datetime(2026, 12, 8, 10, 1, tzinfo=UTC), 60, datetime(2026, 12, 8, 11, tzinfo=UTC)),
    (datetime(2026, 12, 8, 10, 1, tzinfo=UTC), 1, datetime(2026, 12, 8, 10, 1, tzinfo=UTC)),
])
def test_a_timer_falls_in_the_bucket_that_ends_at_or_after_it_is_due(
        due: datetime, minutes: int, end: datetime):
    found = bucket_end(due, minutes)

    assert found == end
    assert timedelta(0) <= found - due < timedelta(minutes=minutes)


def test_a_bucket_needs_an_aware_time():
    with pytest.raises(ValueError, match="aware"):
        bucket_end(datetime(2026, 12, 8, 10, 7), 15)


def test_a_timer_is_keyed_by_customer_activity_entry_and_element():
    act = activity(*WAIT_THEN_MAIL)

    timer = timer_of(decided(act, event("CustomerRegistered")))

    assert timer == TimerRef("customer:c1", "act", 1, "wait", NOW + 3 * DAY)
    assert timer.key == "customer:c1#act#1#wait"


# --- waking up ---------------------------------------------------------------------------------
def test_a_customer_goes_on_when_their_wait_is_over_and_only_once():
    act = activity(*WAIT_THEN_MAIL)
    registered = decided(act, event("CustomerRegistered"))
    timer, catalog = timer_of(registered), Catalog([act])

    resumed = wake(registered.state, catalog, timer, NOW + 3 * DAY)
    again = wake(resumed.state, catalog, timer, NOW + 3 * DAY + timedelta(minutes=15))

    assert actions(resumed) == ["mail"]
    [message] = [e for e in resumed.effects if isinstance(e, MessageQueued)]
    assert (message.entry, message.at, message.event_id) == (1, NOW + 3 * DAY,
                                                             "timer:act/1/wait")
    assert resumed.state.journeys["act"].waiting == []
    assert again.duplicate is True and again.effects == []


def test_a_timer_that_comes_early_changes_nothing():
    act = activity(*WAIT_THEN_MAIL)
    registered = decided(act, event("CustomerRegistered"))

    early = wake(registered.state, Catalog([act]), timer_of(registered), NOW + 2 * DAY)

    assert early.duplicate is True
    assert early.state is registered.state


def test_wake_does_not_change_the_state_it_is_given():
    act = activity(*WAIT_THEN_MAIL)
    registered = decided(act, event("CustomerRegistered"))
    snapshot = registered.state.model_dump()

    wake(registered.state, Catalog([act]), timer_of(registered), NOW + 3 * DAY)

    assert registered.state.model_dump() == snapshot


def dropped_without_actions(decision: Decision) -> bool:
    """Left without any action, the run's end counted: ended by an edit that removed its element
    (`@ended:element_removed`, docs/activities.md "Safe editing"), or by the activity's end."""
    counted = [e.element_id for e in decision.effects]
    return (not decision.duplicate and counted in (["@ended:element_removed"],
                                                   ["@exit:activity_closed"],
                                                   ["@exit:activity_deleted"])
            and decision.state.journeys["act"].waiting == [])


@pytest.mark.parametrize("edited", [
    activity(node("registered", "registers", "mail"), mail()),  # the wait was removed
    activity(node("registered", "registers", "wait"), mail("wait")),  # it is a message now
    activity(*WAIT_THEN_MAIL, state="inactive"),
    activity(*WAIT_THEN_MAIL, end_date="2025-06-17"),  # ended before the wait did
])
def test_a_customer_waiting_in_an_edited_or_stopped_activity_leaves_it_without_actions(
        edited: Activity):
    registered = decided(activity(*WAIT_THEN_MAIL), event("CustomerRegistered"))

    woken = wake(registered.state, Catalog([edited]), timer_of(registered), NOW + 3 * DAY)

    assert dropped_without_actions(woken)
    assert woken.state.journeys["act"].entries == 1  # non-repeatable: still entered once


def test_a_customer_waiting_in_a_deleted_activity_leaves_it():
    registered = decided(activity(*WAIT_THEN_MAIL), event("CustomerRegistered"))

    woken = wake(registered.state, Catalog([]), timer_of(registered), NOW + 3 * DAY)

    assert dropped_without_actions(woken)
    assert [e.element_id for e in woken.effects] == ["@exit:activity_deleted"]


# --- wait for an event, with a timeout ---------------------------------------------------------
ORDER_OR_REMINDER = [
    node("registered", "registers", "ordered"),
    node("ordered", "places_order", "thanks",
         timeout={"amount": 7, "unit": "days", "next": "reminder"}),
    mail("thanks", "thank-you"),
    mail("reminder", "first-order-10"),
]


def order(at: datetime, order_id: str = "o1") -> ShopEvent:
    return event("OrderPlaced", order_id=order_id, total="10", occurred_at=at,
                 lines=[{"product_id": "p", "unit_price": "10"}])


def test_a_trigger_with_a_timeout_parks_the_customer_with_a_timer():
    act = activity(*ORDER_OR_REMINDER)

    registered = decided(act, event("CustomerRegistered"))

    assert timer_of(registered) == TimerRef("customer:c1", "act", 1, "ordered", NOW + 7 * DAY)
    assert registered.state.journeys["act"].waiting == [
        Instance(entry=1, element="ordered", since=NOW, due_at=NOW + 7 * DAY)]


def test_an_order_within_the_timeout_takes_path_a_and_the_timer_then_does_nothing():
    act = activity(*ORDER_OR_REMINDER)
    registered = decided(act, event("CustomerRegistered"))

    ordered = decided(act, order(NOW + 2 * DAY), registered.state)
    late_timer = wake(ordered.state, Catalog([act]), timer_of(registered), NOW + 7 * DAY)

    assert actions(ordered) == ["thanks"]
    assert late_timer.duplicate is True and late_timer.effects == []


def test_no_order_within_the_timeout_takes_path_b_and_a_later_order_does_nothing():
    act = activity(*ORDER_OR_REMINDER)
    registered = decided(act, event("CustomerRegistered"))

    timed_out = wake(registered.state, Catalog([act]), timer_of(registered), NOW + 7 * DAY)
    ordered = decided(act, order(NOW + 8 * DAY), timed_out.state)

    assert actions(timed_out) == ["reminder"]
    assert actions(ordered) == []


def test_an_order_after_the_timeout_does_not_take_path_a_even_before_the_timer_runs():
    act = activity(*ORDER_OR_REMINDER)
    registered = decided(act, event("CustomerRegistered"))

    ordered = decided(act, order(NOW + 7 * DAY + timedelta(minutes=5)), registered.state)
    timed_out = wake(ordered.state, Catalog([act]), timer_of(registered),
                     NOW + 7 * DAY + timedelta(minutes=15))

    assert actions(ordered) == []
    assert actions(timed_out) == ["reminder"]


def test_a_trigger_that_lost_its_timeout_keeps_its_customers_waiting_for_the_event():
    act = activity(*ORDER_OR_REMINDER)
    edited = activity(node("registered", "registers", "ordered"),
                      node("ordered", "places_order", "thanks"), mail("thanks", "thank-you"))
    registered = decided(act, event("CustomerRegistered"))

    woken = wake(registered.state, Catalog([edited]), timer_of(registered), NOW + 7 * DAY)
    ordered = decided(edited, order(NOW + 9 * DAY), woken.state)

    assert woken.effects == []
    assert woken.state.journeys["act"].waiting == [
        Instance(entry=1, element="ordered", since=NOW, due_at=None)]
    assert actions(ordered) == ["thanks"]


# --- checks ------------------------------------------------------------------------------------
def problems(*elements: dict[str, Any], **props: Any) -> list[str]:
    doc = {"id": "act", "name": "Test", **props, "elements": list(elements)}
    segment = json.dumps({"id": "vip", "name": "VIP"})
    _, found = load_catalog([("a.json", json.dumps(doc))], [("vip.json", segment)])
    return [f"{p.path} : {p.reason}" for p in found if isinstance(p, Problem)]


def test_a_timeout_on_the_first_element_is_refused():
    found = problems(node("ordered", "places_order", "mail",
                          timeout={"amount": 7, "unit": "days", "next": "mail"}), mail())

    assert any(p.startswith("$.elements[0].timeout : a timeout is only for a trigger after "
                            "the first element") for p in found), found


def test_a_timeout_must_lead_to_an_existing_element():
    found = problems(node("registered", "registers", "ordered"),
                     node("ordered", "places_order", "mail",
                          timeout={"amount": 7, "unit": "days", "next": "nowhere"}), mail())

    assert "$.elements[1].timeout.next : refers to unknown element 'nowhere'" in found


def test_an_element_reached_only_through_a_timeout_is_reachable():
    assert problems(*ORDER_OR_REMINDER) == []


def test_a_timeout_leading_back_up_the_flow_is_a_cycle():
    found = problems(node("registered", "registers", "wait"),
                     node("wait", "wait", "ordered", amount=1, unit="days"),
                     node("ordered", "places_order", "mail",
                          timeout={"amount": 7, "unit": "days", "next": "wait"}), mail())

    assert any(p.startswith("$.elements[2].timeout.next : forms a cycle") for p in found), found


@pytest.mark.parametrize("trigger", [
    node("vip", "in_segment", "mail", segments=["vip"], mode="once"),
    node("cart", "abandons_cart", "mail", mode="once", min_days=1, max_days=5),
])
def test_a_once_trigger_needs_a_start_date_its_first_active_day(trigger: dict[str, Any]):
    assert problems(trigger, mail()) == [
        f"$.start_date : a {trigger['type']!r} trigger in mode 'once' runs on the activity's "
        "first active day: set a start_date"]
    assert problems(trigger, mail(), start_date="2025-06-15") == []


# --- the daily check: customer is in segment ---------------------------------------------------
JUNE_14, JUNE_15, JUNE_16 = (at_two(date(2025, 6, d)) for d in (14, 15, 16))


def in_segment(mode: str, *segments: str, **props: Any) -> Activity:
    return activity(node("member", "in_segment", "mail", segments=list(segments) or ["vip"],
                         mode=mode), mail(), time_zone="Europe/Paris", **props)


def mails(decision: Decision) -> int:
    return sum(isinstance(e, MessageQueued) for e in decision.effects)


def test_an_in_segment_trigger_in_mode_once_fires_on_the_start_date_only():
    act = in_segment("once", start_date="2025-06-15", repeatable=True)

    decisions = each_day(act, member_of("vip"), JUNE_14, JUNE_15, JUNE_16)

    assert [mails(d) for d in decisions] == [0, 1, 0]


def test_an_in_segment_trigger_in_mode_daily_fires_every_day_when_repeatable():
    act = in_segment("daily", repeatable=True)

    decisions = each_day(act, member_of("vip"), JUNE_14, JUNE_15, JUNE_16)

    assert [mails(d) for d in decisions] == [1, 1, 1]
    assert decisions[-1].state.journeys["act"].entries == 3


def test_a_non_repeatable_daily_in_segment_trigger_fires_once_ever():
    act = in_segment("daily")

    decisions = each_day(act, member_of("vip"), JUNE_14, JUNE_15, JUNE_16)

    assert [mails(d) for d in decisions] == [1, 0, 0]


def test_an_in_segment_trigger_needs_the_customer_in_the_segment_that_day():
    act = in_segment("daily", repeatable=True)

    decision = check_daily(act, member_of("other"), JUNE_15)

    assert decision.duplicate is True and decision.effects == []


@pytest.mark.parametrize(("repeatable", "runs"), [(True, 2), (False, 1)])
def test_a_customer_in_two_listed_segments_runs_a_repeatable_activity_twice(
        repeatable: bool, runs: int):
    act = in_segment("once", "golfers", "skiers", "tennis", start_date="2025-06-15",
                     repeatable=repeatable)

    decision = check_daily(act, member_of("golfers", "skiers"), JUNE_15)

    messages = [e for e in decision.effects if isinstance(e, MessageQueued)]
    assert len(messages) == runs
    assert [m.context["event"]["segment"] for m in messages] == ["golfers", "skiers"][:runs]
    assert [m.event_id for m in messages] == [
        "daily:2025-06-15:act:golfers", "daily:2025-06-15:act:skiers"][:runs]
    assert decision.state.journeys["act"].entries == runs


def test_a_daily_run_tells_the_template_what_fired_it():
    decision = check_daily(in_segment("daily"), member_of("vip"), JUNE_15)

    [message] = [e for e in decision.effects if isinstance(e, MessageQueued)]
    assert message.context["event"] == {"type": "daily", "date": "2025-06-15", "segment": "vip"}
    assert [e.element_id for e in decision.effects if isinstance(e, ElementReached)] == [
        "member", "mail", "@exit:completed"]


def test_an_activity_outside_its_dates_is_not_entered():
    act = in_segment("daily", repeatable=True, start_date="2025-06-15", end_date="2025-06-15")

    decisions = each_day(act, member_of("vip"), JUNE_14, JUNE_15, JUNE_16)

    assert [mails(d) for d in decisions] == [0, 1, 0]


# --- abandoned carts ---------------------------------------------------------------------------
def with_cart(left_at: datetime, lines: int = 1) -> CustomerState:
    return customer(cart=CartState(cart_id="k1", updated_at=left_at, lines=[
        LineRecord(product_id=f"p{n}", quantity=1, value=Decimal("30")) for n in range(lines)]))


@pytest.mark.parametrize(("idle", "fires"), [(2, False), (3, True), (4, False)])
def test_a_daily_abandoned_cart_trigger_fires_on_exactly_its_day(idle: int, fires: bool):
    act = activity(node("cart", "abandons_cart", "mail", mode="daily", days=3), mail(),
                   time_zone="Europe/Paris")
    left = datetime(2025, 6, 15 - idle, 21, 30, tzinfo=PARIS)

    decision = check_daily(act, with_cart(left), JUNE_15)

    assert (mails(decision) == 1) is fires


def test_an_empty_cart_is_not_abandoned():
    act = activity(node("cart", "abandons_cart", "mail", mode="daily", days=3), mail())

    decision = check_daily(act, with_cart(JUNE_15 - 3 * DAY, lines=0), JUNE_15)

    assert mails(decision) == 0


def test_the_abandoned_cart_reaches_the_template():
    act = activity(node("cart", "abandons_cart", "mail", mode="daily", days=3), mail())

    decision = check_daily(act, with_cart(JUNE_15 - 3 * DAY, lines=2), JUNE_15)

    [message] = [e for e in decision.effects if isinstance(e, MessageQueued)]
    cart = message.context["event"]["cart"]
    assert (cart["value"], len(cart["lines"])) == ("60", 2)


@pytest.mark.parametrize(("idle", "day", "fires"), [
    (1, JUNE_15, False), (2, JUNE_15, True), (5, JUNE_15, True), (6, JUNE_15, False),
    (3, JUNE_16, False),  # in range, but not on the first active day
])
def test_a_once_abandoned_cart_trigger_takes_min_to_max_days_on_the_first_day(
        idle: int, day: datetime, fires: bool):
    act = activity(node("cart", "abandons_cart", "mail", mode="once", min_days=2, max_days=5),
                   mail(), start_date="2025-06-15", time_zone="Europe/Paris")

    decision = check_daily(act, with_cart(day - idle * DAY), day)

    assert (mails(decision) == 1) is fires


# --- birthdays ---------------------------------------------------------------------------------
def born(day: str) -> CustomerState:
    return customer(profile=Profile(birthday=date.fromisoformat(day)))


def birthday(days_before: int = 0, **props: Any) -> Activity:
    return activity(node("birthday", "birthday", "mail", days_before=days_before), mail(),
                    time_zone="Europe/Paris", **props)


@pytest.mark.parametrize(("day", "fires"), [(14, False), (15, True), (16, False)])
def test_a_birthday_trigger_fires_its_days_before_the_birthday(day: int, fires: bool):
    decision = check_daily(birthday(7), born("1990-06-22"), at_two(date(2025, 6, day)))

    assert (mails(decision) == 1) is fires
    if fires:
        [message] = [e for e in decision.effects if isinstance(e, MessageQueued)]
        assert message.context["event"]["birthday"] == "1990-06-22"


@pytest.mark.parametrize(("day", "fires"), [
    ("2027-02-27", False), ("2027-02-28", True), ("2027-03-01", False),  # not a leap year
    ("2028-02-28", False), ("2028-02-29", True), ("2028-03-01", False),  # a leap year
])
def test_someone_born_on_29_february_has_a_birthday_every_year(day: str, fires: bool):
    decision = check_daily(birthday(), born("2000-02-29"), at_two(date.fromisoformat(day)))

    assert (mails(decision) == 1) is fires


def test_a_repeatable_birthday_activity_comes_back_every_year_a_non_repeatable_once():
    days = [at_two(date(year, 6, 22)) for year in (2025, 2026)]

    every_year = each_day(birthday(repeatable=True), born("1990-06-22"), *days)
    once = each_day(birthday(), born("1990-06-22"), *days)

    assert [mails(d) for d in every_year] == [1, 1]
    assert [mails(d) for d in once] == [1, 0]


# --- the shop's day: time zones, daylight saving, re-runs --------------------------------------
@pytest.mark.parametrize("start", ["2025-03-30", "2025-10-26"])  # the last Sundays
def test_the_daily_check_at_two_in_paris_runs_on_the_local_day_around_clock_changes(start: str):
    first = date.fromisoformat(start)
    act = in_segment("once", start_date=start, repeatable=True)
    days = [at_two(first + timedelta(days=n)) for n in (-1, 0, 1)]

    decisions = each_day(act, member_of("vip"), *days)

    assert [mails(d) for d in decisions] == [0, 1, 0]
    assert [d.state.last_daily for d in decisions] == [None, first, first]


def test_the_repeated_hour_of_the_autumn_change_does_not_run_the_day_twice():
    act = in_segment("daily", repeatable=True)
    autumn = date(2025, 10, 26)
    first, second = at_two(autumn, fold=0), at_two(autumn, fold=1)  # 02:00 CEST, then CET
    assert second - first == timedelta(hours=1)

    decisions = each_day(act, member_of("vip"), first, second)

    assert [mails(d) for d in decisions] == [1, 0]
    assert decisions[1].duplicate is True


def test_just_after_midnight_in_paris_is_already_the_next_day():
    act = in_segment("once", start_date="2025-06-15", repeatable=True)
    half_past_midnight = datetime(2025, 6, 15, 0, 30, tzinfo=PARIS)  # 14 June in UTC

    decision = check_daily(act, member_of("vip"), half_past_midnight.astimezone(UTC))

    assert mails(decision) == 1
    assert decision.state.last_daily == date(2025, 6, 15)


def test_running_the_daily_check_again_the_same_day_changes_nothing():
    act = in_segment("daily", repeatable=True)
    first = check_daily(act, member_of("vip"), JUNE_15)

    again = check_daily(act, first.state, JUNE_15 + timedelta(hours=5))

    assert mails(first) == 1
    assert again.duplicate is True and again.effects == []
    assert again.state is first.state


def test_a_customer_with_nothing_to_do_costs_no_write():
    before = member_of("other")

    decision = check_daily(in_segment("daily", repeatable=True), before, JUNE_15)

    assert decision.duplicate is True
    assert decision.state is before and before.last_daily is None


# --- memberships and waits at the daily check --------------------------------------------------
def test_a_time_limited_membership_that_ran_out_is_ended():
    state = customer(segments={
        "eligible": Membership(since=NOW - 7 * DAY, until=JUNE_15 - timedelta(hours=1),
                               by="promo"),
        "vip": Membership(since=NOW - 7 * DAY, until=JUNE_15 + DAY, by="promo"),
        "buyers": Membership(since=NOW - 7 * DAY)})

    decision = check_daily([], state, JUNE_15)

    [removed] = decision.effects
    assert isinstance(removed, SegmentRemoved)
    assert (removed.segment, removed.activity_id, removed.element_id, removed.entry) == (
        "eligible", "promo", "eligible", 0)
    assert set(decision.state.segments) == {"vip", "buyers"}
    [change] = decision.state.segment_history
    assert (change.segment, change.change, change.at, change.by) == ("eligible", "removed",
                                                                     JUNE_15, "promo")


def test_a_rule_based_membership_is_left_to_its_rule():
    expired_mark = Membership(since=NOW - 7 * DAY, until=NOW - DAY, by="rule:expired")

    decision = check_daily([], customer(segments={"recent": expired_mark}), JUNE_15)

    assert decision.effects == []


def test_customers_waiting_in_an_ended_activity_are_let_go():
    act = activity(*ORDER_OR_REMINDER, end_date="2025-06-14", time_zone="Europe/Paris")
    registered = decided(activity(*ORDER_OR_REMINDER), event("CustomerRegistered",
                                                             occurred_at=NOW - 2 * DAY))

    decision = check_daily(act, registered.state, JUNE_15 + DAY)

    assert dropped_without_actions(decision)


def test_activities_past_their_end_date_in_their_time_zone_are_to_be_marked_inactive():
    ended = activity(*ORDER_OR_REMINDER, id="ended", end_date="2025-06-14",
                     time_zone="Europe/Paris")
    last_day = activity(*ORDER_OR_REMINDER, id="last-day", end_date="2025-06-15",
                        time_zone="Europe/Paris")
    already = activity(*ORDER_OR_REMINDER, id="already", end_date="2025-06-01",
                       state="inactive")
    catalog = Catalog([ended, last_day, already, activity(*ORDER_OR_REMINDER, id="open")])

    # 14 June ends at 22:00 UTC in Paris (summer time); late events may come for LATE_EVENTS.
    ended_at = datetime(2025, 6, 14, 22, 0, tzinfo=UTC)
    assert expired(catalog, ended_at + LATE_EVENTS - timedelta(minutes=1)) == []
    assert expired(catalog, ended_at + LATE_EVENTS) == ["ended"]
    assert expired(catalog, ended_at + LATE_EVENTS + DAY) == ["ended", "last-day"]


def test_a_wait_whose_timer_was_lost_is_resumed_by_the_daily_check_and_only_once():
    act = activity(*WAIT_THEN_MAIL)
    registered = decided(act, event("CustomerRegistered", occurred_at=NOW - 4 * DAY))

    checked = check_daily(act, registered.state, JUNE_15)
    late_timer = wake(checked.state, Catalog([act]), timer_of(registered), JUNE_15)

    assert actions(checked) == ["mail"]
    [message] = [e for e in checked.effects if isinstance(e, MessageQueued)]
    assert message.event_id == "timer:act/1/wait"  # the same random paths as the timer's
    assert late_timer.duplicate is True


def test_a_wait_that_is_not_over_is_left_to_its_timer():
    act = activity(*WAIT_THEN_MAIL)
    registered = decided(act, event("CustomerRegistered", occurred_at=NOW))

    decision = check_daily(act, registered.state, JUNE_16)

    assert decision.duplicate is True


def test_a_later_daily_trigger_lets_waiting_customers_go_on_the_day_it_holds():
    act = activity(node("registered", "registers", "member"),
                   node("member", "in_segment", "mail", segments=["vip"], mode="daily"),
                   mail())
    registered = decided(act, event("CustomerRegistered", occurred_at=NOW - 3 * DAY))

    not_yet = check_daily(act, registered.state, JUNE_14)
    joined = not_yet.state.model_copy(update={"segments": member_of("vip").segments})
    now_in = check_daily(act, joined, JUNE_15)

    assert actions(not_yet) == []
    assert actions(now_in) == ["mail"]
    assert now_in.state.journeys["act"].waiting == []
    assert [e.element_id for e in now_in.effects if isinstance(e, ElementReached)] == [
        "mail", "@exit:completed"]


def test_the_daily_check_does_not_change_the_state_it_is_given():
    act = in_segment("daily", repeatable=True)
    before = member_of("vip", cart=CartState(cart_id="k", updated_at=NOW - 5 * DAY, lines=[
        LineRecord(product_id="p", quantity=1, value=Decimal(3))]))
    snapshot = before.model_dump()

    check_daily(act, before, JUNE_15)

    assert before.model_dump() == snapshot


class _Runs:
    def claim(self, day: str, at: str, segments: int) -> bool:
        return True

    def handed_out(self, day: str) -> None:
        pass

    def checked(self, day: str) -> bool:
        return True


class _Histogram:
    def merged(self) -> dict[str, int]:
        return {}

    def save_snapshot(self, day: str, histogram: dict[str, int]) -> None:
        pass


class _BrokenFiles:
    def catalog(self, max_age: float | None = None) -> Catalog:
        raise RuntimeError("AccessDenied")

    def deactivate(self, activity_id: str) -> bool:
        raise AssertionError("not reached")


def test_a_failure_to_mark_ended_activities_never_costs_the_days_check():
    sent: list[dict[str, Any]] = []
    counted: list[tuple[str, int]] = []

    class Work:
        def send(self, items: list[dict[str, Any]]) -> None:
            sent.extend(items)

    check = DailyCheck(runs=_Runs(), work=Work(), rfm=_Histogram(), clock=SimulatedClock(JUNE_15),
                       zone=ZoneInfo("Europe/Paris"), segments=3,
                       count=lambda name, n: counted.append((name, n)), files=_BrokenFiles())

    answer = check.start()

    assert answer["started"] is True and answer["deactivated"] == []
    assert [item["segment"] for item in sent] == [0, 1, 2]
    assert ("ActivityDeactivationFailed", 1) in counted
