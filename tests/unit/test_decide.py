"""`decide`: what a marketer expects an activity to do when a customer's events come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import Decision, decide
from dialogue.engine.flow import EXIT, Chance, after, stable_chance
from dialogue.model.activity import Activity
from dialogue.model.customer import (
    PROCESSED_FOR,
    ConsentState,
    CustomerState,
    Instance,
    Membership,
)
from dialogue.model.effects import (
    CouponIssued,
    ElementReached,
    MessageQueued,
    SegmentAdded,
    SegmentRemoved,
    WaitStarted,
)
from dialogue.model.events import Profile, ShopEvent
from pydantic import ValidationError

from tests.unit.conftest import NOW, activity, event

DAY = timedelta(days=1)


# --- small local builders ----------------------------------------------------------------------
def node(ident: str, element_type: str, /, next: str | None = None,
         **options: Any) -> dict[str, Any]:
    element = {"id": ident, "type": element_type, **options}
    if next is not None:
        element["next"] = next
    return element


def coupon(ident: str = "coupon", promotion: str = "THANKS", next: str | None = None):
    return node(ident, "issue_coupon", next, promotion=promotion)


def mail(ident: str = "mail", template: str = "welcome", next: str | None = None):
    return node(ident, "send_message", next, channel="email", template=template)


def customer(**fields: Any) -> CustomerState:
    return CustomerState(subject="customer:c1", **fields)


def line(product: str, price: str, *categories: str, **more: Any) -> dict[str, Any]:
    return {"product_id": product, "unit_price": price, "categories": list(categories), **more}


def order(order_id: str, total: str, *lines: dict[str, Any], **detail: Any) -> ShopEvent:
    return event("OrderPlaced", order_id=order_id, total=total,
                 lines=list(lines) or [line("p1", total)], **detail)


def play(activities: Activity | list[Activity], *events: ShopEvent,
         state: CustomerState | None = None, chance: Chance = stable_chance) -> list[Decision]:
    """Each event decided in turn as soon as it happened, the state carried to the next."""
    catalog = Catalog(activities if isinstance(activities, list) else [activities])
    state = state or customer()
    decisions = []
    for ev in events:
        decision = decide(state, ev, catalog, ev.detail.occurred_at, chance=chance)
        decisions.append(decision)
        state = decision.state
    return decisions


def actions(decision: Decision) -> list[str]:
    """The elements that acted (counters left out), in order."""
    return [e.element_id for e in decision.effects if not isinstance(e, ElementReached)]


def reached(decision: Decision) -> list[str]:
    return [e.element_id for e in decision.effects  # the elements, not how runs ended
            if isinstance(e, ElementReached) and not e.element_id.startswith(EXIT)]


# --- triggers ----------------------------------------------------------------------------------
def test_registration_starts_the_welcome_dialogue():
    act = activity(node("registered", "registers", "mail"), mail(template="thank-you"))
    registered = event("CustomerRegistered", event_id="reg-1")

    [decision] = play(act, registered)

    [message] = [e for e in decision.effects if isinstance(e, MessageQueued)]
    assert (message.channel, message.template, message.event_id) == ("email", "thank-you", "reg-1")
    assert message.send_immediately is False
    assert decision.state.registered_at == NOW


def test_an_event_no_trigger_listens_to_does_nothing():
    act = activity(node("registered", "registers", "mail"), mail())

    [decision] = play(act, event("CustomerLoggedIn"))

    assert decision.effects == []
    assert decision.state.journeys == {}


@pytest.mark.parametrize(("total", "rewarded"), [("99.99", False), ("100", True), ("250", True)])
def test_an_order_trigger_with_a_minimum_total_ignores_smaller_orders(total: str, rewarded: bool):
    act = activity(node("ordered", "places_order", "coupon", min_total="100"), coupon())

    [decision] = play(act, order("o1", total))

    assert ("coupon" in actions(decision)) is rewarded


@pytest.mark.parametrize(("categories", "rewarded"), [
    (["Golf"], False),
    (["Tennis", "ski"], True),  # any line of any listed category, case-insensitive
])
def test_an_order_trigger_with_categories_needs_a_line_in_one_of_them(
        categories: list[str], rewarded: bool):
    act = activity(node("ordered", "places_order", "coupon", categories=categories), coupon())
    placed = order("o1", "120", line("boots", "100", "Ski"), line("balls", "20", "Tennis-x"))

    [decision] = play(act, placed)

    assert ("coupon" in actions(decision)) is rewarded


@pytest.mark.parametrize(("rule", "value", "query", "fires"), [
    ("exact", "rossignol", "Rossignol ", True),
    ("exact", "rossignol", "rossignol skis", False),
    ("starts", "ross", "Rossignol skis", True),
    ("starts", "skis", "rossignol skis", False),
    ("contains", "gnol", "rossignol skis", True),
    ("contains", "wilson", "rossignol skis", False),
    ("ends", "skis", "rossignol SKIS", True),
    ("ends", "ross", "rossignol skis", False),
    ("any", "", "anything at all", True),
])
def test_a_search_trigger_applies_its_keyword_rule(rule: str, value: str, query: str, fires: bool):
    keyword = {"rule": rule, "value": value} if value else {"rule": rule}
    act = activity(node("searched", "searches", "coupon", keyword=keyword), coupon())

    [decision] = play(act, event("SearchPerformed", query=query))

    assert ("coupon" in actions(decision)) is fires


def test_a_search_trigger_counts_matching_searches_inside_its_time_frame():
    act = activity(node("searched", "searches", "coupon", keyword={"rule": "contains",
                                                                    "value": "ski"},
                        times=3, time_frame={"kind": "last_days", "days": 7}), coupon())
    searches = [
        event("SearchPerformed", query="ski boots", occurred_at=NOW - 10 * DAY),  # too old
        event("SearchPerformed", query="ski poles", occurred_at=NOW - 3 * DAY),
        event("SearchPerformed", query="golf balls", occurred_at=NOW - 2 * DAY),  # no match
        event("SearchPerformed", query="ski gloves", occurred_at=NOW - DAY),
        event("SearchPerformed", query="ski wax", occurred_at=NOW),
    ]

    decisions = play(act, *searches)

    assert [bool(actions(d)) for d in decisions] == [False, False, False, False, True]


def test_a_repeatable_counting_trigger_counts_again_from_each_entry():
    act = activity(node("searched", "searches", "coupon", keyword={"rule": "any"}, times=2),
                   coupon(), repeatable=True)
    searches = [event("SearchPerformed", query=f"q{i}", occurred_at=NOW + i * DAY)
                for i in range(4)]

    decisions = play(act, *searches)

    assert [bool(actions(d)) for d in decisions] == [False, True, False, True]


def test_a_late_event_counts_once_where_it_falls_in_time():
    """A search that arrives after a later page view is recorded before it: it is one search,
    not two (the count looks for the event by identity, not as the history's last)."""
    act = activity(node("searched", "searches", "coupon", keyword={"rule": "any"}, times=2),
                   coupon())
    viewed = event("PageVisited", url="https://shop.example/", occurred_at=NOW + DAY)
    late = event("SearchPerformed", query="ski", occurred_at=NOW + DAY - timedelta(hours=1))
    again = event("SearchPerformed", query="golf", occurred_at=NOW + 2 * DAY)

    decisions = play(act, viewed, late, again)

    assert [o.kind for o in decisions[1].state.behaviour] == ["SearchPerformed", "PageVisited"]
    assert [bool(actions(d)) for d in decisions] == [False, False, True]


@pytest.mark.parametrize(("kind", "events", "fires"), [
    ("review", ["like"], False),
    ("review", ["review"], True),
    ("any", ["like"], True),
    ("comment", ["comment", "like"], True),  # fired on the comment; the like does not re-fire
])
def test_a_social_trigger_fires_on_its_kind_of_participation(
        kind: str, events: list[str], fires: bool):
    act = activity(node("social", "social_participation", "coupon", kind=kind), coupon())

    decisions = play(act, *(event("SocialParticipation", kind=k) for k in events))

    assert any("coupon" in actions(d) for d in decisions) is fires


def test_a_social_trigger_needs_its_number_of_participations():
    act = activity(node("social", "social_participation", "coupon", kind="review", times=2),
                   coupon())
    acts = [event("SocialParticipation", kind=k, occurred_at=NOW + i * DAY)
            for i, k in enumerate(["review", "like", "review"])]

    decisions = play(act, *acts)

    assert [bool(actions(d)) for d in decisions] == [False, False, True]


def test_a_promotion_checkout_trigger_counts_the_orders_that_used_the_promotion():
    act = activity(node("promo", "checks_out_with_promotion", "coupon", promotion="SUMMER",
                        times=2), coupon())
    orders = [
        order("o1", "10", promotion_codes=["summer"], occurred_at=NOW),
        order("o2", "10", occurred_at=NOW + DAY),  # no promotion
        order("o3", "10", promotion_codes=["WINTER"], occurred_at=NOW + 2 * DAY),
        order("o4", "10", promotion_codes=["SUMMER"], occurred_at=NOW + 3 * DAY),
    ]

    decisions = play(act, *orders)

    assert [bool(actions(d)) for d in decisions] == [False, False, False, True]


def test_a_custom_event_trigger_matches_its_name_and_parameters():
    act = activity(node("wished", "wait_for_event", "coupon", event="added_to_wish_list",
                        parameters=[{"name": "product", "match": {"rule": "starts",
                                                                   "value": "ski-"}},
                                    {"name": "list", "match": {"rule": "any"}}]),
                   coupon())
    events = [
        event("CustomEvent", name="clicked_link", parameters={"product": "ski-1", "list": "x"}),
        event("CustomEvent", name="added_to_wish_list", parameters={"product": "golf-1",
                                                                     "list": "x"}),
        event("CustomEvent", name="added_to_wish_list", parameters={"product": "ski-1"}),
        event("CustomEvent", name="added_to_wish_list", parameters={"product": "SKI-2",
                                                                     "list": "x"}),
    ]

    decisions = play(act, *events)

    assert [bool(actions(d)) for d in decisions] == [False, False, False, True]


def test_a_wait_for_event_on_a_page_visit_matches_the_referrer():
    act = activity(node("referred", "wait_for_event", "coupon", event="PageVisited",
                        parameters=[{"name": "referrer", "match": {"rule": "contains",
                                                                    "value": "partner.example"}}]),
                   coupon())
    visits = [
        event("PageVisited", url="https://shop.example/", referrer="https://google.example/"),
        event("PageVisited", url="https://shop.example/"),
        event("PageVisited", url="https://shop.example/", referrer="https://www.partner.example/x"),
    ]

    decisions = play(act, *visits)

    assert [bool(actions(d)) for d in decisions] == [False, False, True]


def test_a_wait_for_event_on_a_category_view_matches_the_category():
    act = activity(node("viewed", "wait_for_event", "coupon", event="CategoryViewed",
                        parameters=[{"name": "category", "match": {"rule": "exact",
                                                                    "value": "Ski"}}]),
                   coupon())

    decisions = play(act, event("CategoryViewed", category="Golf"),
                     event("CategoryViewed", category="ski"))

    assert [bool(actions(d)) for d in decisions] == [False, True]


def test_a_wait_for_event_on_a_login_fires_on_the_login():
    act = activity(node("logged-in", "wait_for_event", "coupon", event="CustomerLoggedIn"),
                   coupon())

    [decision] = play(act, event("CustomerLoggedIn"))

    assert actions(decision) == ["coupon"]



def test_a_custom_event_named_like_a_shop_event_does_not_count_as_one():
    act = activity(node("searched", "searches", "coupon", keyword={"rule": "any"}, times=2),
                   coupon())
    try:
        spoof = event("CustomEvent", name="SearchPerformed", parameters={"query": "x"})
    except ValidationError:
        return  # refusing such a name at the door fixes it too

    decisions = play(act, spoof, event("SearchPerformed", query="y", occurred_at=NOW + DAY))

    assert actions(decisions[-1]) == []

# --- repeatable --------------------------------------------------------------------------------
def test_non_repeatable_activity_rewards_only_the_first_order():
    act = activity(node("ordered", "places_order", "coupon"), coupon())

    first, second = play(act, order("o1", "10"), order("o2", "10", occurred_at=NOW + DAY))

    assert actions(first) == ["coupon"]
    assert second.effects == []
    assert second.state.journeys["act"].entries == 1


def test_repeatable_activity_rewards_every_order_under_its_own_entry():
    act = activity(node("ordered", "places_order", "coupon"), coupon(), repeatable=True)

    first, second = play(act, order("o1", "10"), order("o2", "10", occurred_at=NOW + DAY))

    coupons = [e for d in (first, second) for e in d.effects if isinstance(e, CouponIssued)]
    assert [c.entry for c in coupons] == [1, 2]
    assert coupons[0].key != coupons[1].key
    assert second.state.journeys["act"].entries == 2


def test_repeatable_activity_does_not_reward_the_same_order_twice():
    act = activity(node("ordered", "places_order", "coupon"), coupon(), repeatable=True)

    first, resent = play(act, order("o1", "10", event_id="e-1"),
                         order("o1", "10", event_id="e-2", occurred_at=NOW + DAY))

    assert actions(first) == ["coupon"]
    assert resent.state.order_count == 1
    assert actions(resent) == []


# --- dates and state ---------------------------------------------------------------------------
PARIS_JUNE = {"start_date": "2025-06-01", "end_date": "2025-06-30", "time_zone": "Europe/Paris"}


@pytest.mark.parametrize(("occurred_at", "rewarded"), [
    ("2025-06-30T21:30:00Z", True),  # 23:30 in Paris on the end date
    ("2025-06-30T23:30:00+02:00", True),
    ("2025-06-30T22:30:00Z", False),  # 00:30 in Paris, the next day
    ("2025-05-31T21:30:00Z", False),  # 23:30 in Paris the day before the start
    ("2025-05-31T22:10:00Z", True),  # 00:10 in Paris on the start date
])
def test_activity_dates_are_whole_days_in_its_time_zone(occurred_at: str, rewarded: bool):
    act = activity(node("ordered", "places_order", "coupon"), coupon(), **PARIS_JUNE)

    [decision] = play(act, order("o1", "10", occurred_at=occurred_at))

    assert ("coupon" in actions(decision)) is rewarded


def test_an_order_on_the_last_evening_counts_even_when_processed_after_midnight():
    act = activity(node("ordered", "places_order", "coupon"), coupon(), **PARIS_JUNE)
    late = order("o1", "10", occurred_at="2025-06-30T23:50:00+02:00")
    processed = datetime(2025, 7, 1, 1, 0, tzinfo=UTC)  # 03:00 in Paris

    decision = decide(customer(), late, Catalog([act]), processed)

    assert actions(decision) == ["coupon"]


def test_an_inactive_activity_does_nothing():
    act = activity(node("ordered", "places_order", "coupon"), coupon(), state="inactive")

    [decision] = play(act, order("o1", "10"))

    assert decision.effects == []
    assert decision.state.journeys == {}
    assert decision.state.order_count == 1  # the order is still recorded


def test_an_inactive_activity_does_not_resume_its_waiting_customers():
    live = activity(node("registered", "registers", "searched"),
                    node("searched", "searches", "coupon", keyword={"rule": "any"}), coupon())
    paused = Activity.model_validate({**live.model_dump(), "state": "inactive"})
    [registered] = play(live, event("CustomerRegistered"))

    [search] = play(paused, event("SearchPerformed", query="ski"), state=registered.state)

    assert search.effects == []
    assert [i.element for i in search.state.journeys["act"].waiting] == ["searched"]


def test_an_event_seen_before_is_a_duplicate_and_changes_nothing():
    act = activity(node("ordered", "places_order", "coupon"), coupon(), repeatable=True)
    placed = order("o1", "10", event_id="e-1")
    [first] = play(act, placed)

    again = decide(first.state, placed, Catalog([act]), NOW + DAY)

    assert again.duplicate is True
    assert again.effects == []
    assert again.state.order_count == 1
    assert again.state.journeys["act"].entries == 1
    assert first.duplicate is False


def test_a_redelivery_within_the_window_is_a_duplicate_and_older_ids_are_forgotten():
    """Ids are kept PROCESSED_FOR (longer than any queue holds an event), not forever: the
    state a daily scan reads stays small."""
    searched = event("SearchPerformed", query="ski", event_id="s-1")
    [first] = play([], searched)

    late = decide(first.state, searched, Catalog([]), NOW + PROCESSED_FOR - DAY)
    assert late.duplicate is True
    later = decide(first.state, event("SearchPerformed", query="golf", event_id="s-2"),
                   Catalog([]), NOW + PROCESSED_FOR + DAY)
    assert later.state.has_processed("s-2") and not later.state.has_processed("s-1")
    assert len(later.state.processed) == 1


def test_decide_does_not_change_the_state_it_is_given():
    act = activity(node("ordered", "places_order", "add"),
                   node("add", "add_to_segment", "wait", segment="buyers"),
                   node("wait", "wait", "coupon", amount=1, unit="days"), coupon())
    before = customer(consent=ConsentState(tracking=True))
    snapshot = before.model_dump()

    decision = decide(before, order("o1", "10"), Catalog([act]), NOW)

    assert before.model_dump() == snapshot
    assert decision.state is not before
    assert decision.state.order_count == 1
    assert "buyers" in decision.state.segments


def test_a_guest_is_followed_under_its_browser_id():
    act = activity(node("searched", "searches", "coupon", keyword={"rule": "any"}), coupon())
    search = event("SearchPerformed", customer_id=None, personalization_id="b-7", query="ski")

    [decision] = play(act, search, state=CustomerState(subject="guest:b-7"))

    [issued] = [e for e in decision.effects if isinstance(e, CouponIssued)]
    assert issued.subject == "guest:b-7"


# --- later triggers and waits ------------------------------------------------------------------
REGISTER_THEN_SEARCH = [
    node("registered", "registers", "welcome"),
    mail("welcome", next="searched"),
    node("searched", "searches", "coupon", keyword={"rule": "contains", "value": "ski"}),
    coupon(),
]


def test_a_later_trigger_ignores_customers_who_are_not_waiting_at_it():
    act = activity(*REGISTER_THEN_SEARCH)

    [decision] = play(act, event("SearchPerformed", query="ski"))

    assert decision.effects == []


def test_a_later_trigger_parks_the_customer_until_a_matching_event_resumes_them():
    act = activity(*REGISTER_THEN_SEARCH)

    registered, other, ski = play(
        act, event("CustomerRegistered"),
        event("SearchPerformed", query="golf", occurred_at=NOW + DAY),
        event("SearchPerformed", query="ski boots", occurred_at=NOW + 2 * DAY))

    assert actions(registered) == ["welcome"]
    assert registered.state.journeys["act"].waiting == [
        Instance(entry=1, element="searched", since=NOW)]
    assert other.effects == []
    assert actions(ski) == ["coupon"]
    assert reached(ski) == ["coupon"]  # "searched" was counted when the customer parked there
    assert {e.entry for e in ski.effects} == {1}
    assert ski.state.journeys["act"].waiting == []
    assert ski.state.journeys["act"].entries == 1


def test_a_later_trigger_counts_only_what_happened_since_the_customer_waits_there():
    act = activity(node("registered", "registers", "searched"),
                   node("searched", "searches", "coupon", keyword={"rule": "any"}, times=2),
                   coupon())

    decisions = play(act,
                     event("SearchPerformed", query="before", occurred_at=NOW - DAY),
                     event("CustomerRegistered", occurred_at=NOW),
                     event("SearchPerformed", query="one", occurred_at=NOW + DAY),
                     event("SearchPerformed", query="two", occurred_at=NOW + 2 * DAY))

    assert [actions(d) for d in decisions] == [[], [], [], ["coupon"]]


def test_a_wait_parks_the_customer_until_its_due_time():
    act = activity(node("registered", "registers", "wait"),
                   node("wait", "wait", "mail", amount=3, unit="days"), mail())

    [decision] = play(act, event("CustomerRegistered"))

    [started] = [e for e in decision.effects if isinstance(e, WaitStarted)]
    assert started.due_at == NOW + 3 * DAY
    assert "mail" not in actions(decision)
    assert decision.state.journeys["act"].waiting == [
        Instance(entry=1, element="wait", since=NOW, due_at=NOW + 3 * DAY)]


def test_a_wait_in_months_counts_calendar_months():
    act = activity(node("registered", "registers", "wait"),
                   node("wait", "wait", "mail", amount=1, unit="months"), mail())
    jan_31 = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)

    [decision] = play(act, event("CustomerRegistered", occurred_at=jan_31))

    [started] = [e for e in decision.effects if isinstance(e, WaitStarted)]
    assert started.due_at == datetime(2025, 2, 28, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("start", "amount", "unit", "due"), [
    (datetime(2024, 1, 31), 1, "months", datetime(2024, 2, 29)),  # leap year
    (datetime(2025, 1, 31), 1, "months", datetime(2025, 2, 28)),
    (datetime(2025, 11, 30), 3, "months", datetime(2026, 2, 28)),  # across a year end
    (datetime(2025, 3, 15), 12, "months", datetime(2026, 3, 15)),
    (datetime(2025, 3, 15), 2, "weeks", datetime(2025, 3, 29)),
    (datetime(2025, 3, 15, 23), 90, "minutes", datetime(2025, 3, 16, 0, 30)),
    (datetime(2025, 3, 15, 23), 2, "hours", datetime(2025, 3, 16, 1)),
])
def test_wait_durations_add_up_on_the_calendar(start: datetime, amount: int, unit: str,
                                               due: datetime):
    assert after(start, amount, unit) == due


# --- branches ----------------------------------------------------------------------------------
FRENCH = {"type": "attribute", "field": "country", "op": "equals", "value": "FR"}


def branching(mode: str, *paths: dict[str, Any]) -> Activity:
    return activity(node("registered", "registers", "split"),
                    {"id": "split", "type": "branch", "mode": mode, "paths": list(paths)},
                    coupon("coupon-a", "A"), coupon("coupon-b", "B"))


def registration(country: str) -> ShopEvent:
    return event("CustomerRegistered", profile={"country": country})


@pytest.mark.parametrize(("country", "taken"), [("fr", ["coupon-a"]), ("DE", ["coupon-b"])])
def test_a_first_qualifying_branch_takes_only_the_first_path_that_qualifies(
        country: str, taken: list[str]):
    act = branching("first", {"name": "France", "conditions": [FRENCH], "next": "coupon-a"},
                    {"name": "Everyone", "next": "coupon-b"})

    [decision] = play(act, registration(country))

    assert actions(decision) == taken


def test_a_first_qualifying_branch_with_no_qualifying_path_stops():
    act = branching("first", {"name": "France", "conditions": [FRENCH], "next": "coupon-a"},
                    {"name": "France too", "conditions": [FRENCH], "next": "coupon-b"})

    [decision] = play(act, registration("IT"))

    assert actions(decision) == []
    assert reached(decision) == ["registered", "split"]


@pytest.mark.parametrize(("country", "taken"), [("FR", ["coupon-a", "coupon-b"]),
                                                 ("DE", ["coupon-b"])])
def test_an_all_qualifying_branch_takes_every_path_that_qualifies(
        country: str, taken: list[str]):
    act = branching("all", {"name": "France", "conditions": [FRENCH], "next": "coupon-a"},
                    {"name": "Everyone", "next": "coupon-b"})

    [decision] = play(act, registration(country))

    assert actions(decision) == taken


@pytest.mark.parametrize(("roll", "taken"), [(0.1, ["coupon-a"]), (0.2999, ["coupon-a"]),
                                             (0.3, ["coupon-b"]), (0.99, ["coupon-b"])])
def test_a_random_branch_splits_by_its_percentages(roll: float, taken: list[str]):
    act = branching("random", {"name": "Test", "percent": 30, "next": "coupon-a"},
                    {"name": "Control", "percent": 70, "next": "coupon-b"})

    [decision] = play(act, registration("FR"), chance=lambda key: roll)

    assert actions(decision) == taken


def test_a_random_branch_draws_once_per_event_activity_and_branch():
    asked: list[str] = []

    def chance(key: str) -> float:
        asked.append(key)
        return 0.5

    act = branching("random", {"name": "Test", "percent": 50, "next": "coupon-a"},
                    {"name": "Control", "percent": 50, "next": "coupon-b"})

    play(act, event("CustomerRegistered", event_id="reg-9"), chance=chance)

    assert asked == ["reg-9/act/split"]


def test_a_retried_event_takes_the_same_random_path():
    act = branching("random", {"name": "Test", "percent": 50, "next": "coupon-a"},
                    {"name": "Control", "percent": 50, "next": "coupon-b"})
    expected = ["coupon-a"] if stable_chance("reg-1/act/split") < 0.5 else ["coupon-b"]

    taken = [actions(play(act, event("CustomerRegistered", event_id="reg-1"))[0])
             for _ in range(3)]

    assert taken == [expected] * 3


def test_a_random_path_still_applies_its_own_conditions():
    act = branching("random", {"name": "France", "percent": 50, "conditions": [FRENCH],
                               "next": "coupon-a"},
                    {"name": "Control", "percent": 50, "next": "coupon-b"})

    [decision] = play(act, registration("DE"), chance=lambda key: 0.1)

    assert actions(decision) == []


# --- targets -----------------------------------------------------------------------------------
def passes(*conditions: dict[str, Any], state: CustomerState | None = None,
           history: tuple[ShopEvent, ...] = (), at: datetime = NOW, **props: Any) -> bool:
    """Does a customer with this state / these past events get past a target element?"""
    act = activity(node("probe", "wait_for_event", "check", event="probe"),
                   node("check", "target", "coupon", conditions=list(conditions)),
                   coupon(), **props)
    decisions = play(act, *history, event("CustomEvent", name="probe", occurred_at=at),
                     state=state)
    return "coupon" in actions(decisions[-1])


def member_of(*segments: str, until: datetime | None = None) -> CustomerState:
    return customer(segments={s: Membership(since=NOW - 10 * DAY, until=until) for s in segments})


@pytest.mark.parametrize(("match", "segments", "expected"), [
    ("any", ["skiers", "golfers"], True),
    ("any", ["golfers"], False),
    ("all", ["skiers", "vip"], True),
    ("all", ["skiers", "golfers"], False),
    ("none", ["golfers"], True),
    ("none", ["golfers", "vip"], False),
])
def test_a_segment_target_checks_membership(match: str, segments: list[str], expected: bool):
    condition = {"type": "segment", "match": match, "segments": segments}

    assert passes(condition, state=member_of("skiers", "vip")) is expected


def test_a_segment_target_ignores_an_expired_membership():
    condition = {"type": "segment", "match": "any", "segments": ["skiers"]}

    assert passes(condition, state=member_of("skiers", until=NOW - DAY)) is False
    assert passes(condition, state=member_of("skiers", until=NOW + DAY)) is True


SKI_AND_GOLF = (
    order("o1", "300", line("skis", "100", "Ski", quantity=2), line("balls", "100", "Golf"),
          occurred_at=NOW - 40 * DAY),
    order("o2", "50", line("wax", "25", "Ski", quantity=2), occurred_at=NOW - 10 * DAY),
    order("o3", "80", line("racket", "80", "Tennis"), occurred_at=NOW - DAY),
)


@pytest.mark.parametrize(("history", "expected"), [
    ({"measure": "orders", "aggregate": "count", "compare": {"op": "exactly", "value": 3}}, True),
    ({"measure": "orders", "aggregate": "count", "categories": ["ski"],
      "compare": {"op": "exactly", "value": 2}}, True),
    ({"measure": "items", "aggregate": "count", "categories": ["Ski"],
      "compare": {"op": "exactly", "value": 4}}, True),
    ({"measure": "items", "aggregate": "count", "products": ["racket"],
      "compare": {"op": "exactly", "value": 1}}, True),
    ({"measure": "orders", "aggregate": "value", "compare": {"op": "exactly", "value": 430}},
     True),
    ({"measure": "items", "aggregate": "value", "categories": ["Ski"],
      "compare": {"op": "between", "value": 250, "max": 250}}, True),
    ({"measure": "orders", "aggregate": "value", "compare": {"op": "less_than", "value": 430}},
     False),
    ({"measure": "orders", "aggregate": "count", "time_frame": {"kind": "last_days", "days": 30},
      "compare": {"op": "exactly", "value": 2}}, True),
    ({"measure": "orders", "aggregate": "count", "categories": ["Golf"], "last_orders": 2,
      "compare": {"op": "at_least", "value": 1}}, False),
    ({"measure": "orders", "aggregate": "count", "categories": ["Golf"], "last_orders": 3,
      "compare": {"op": "at_least", "value": 1}}, True),
    ({"measure": "orders", "aggregate": "count", "time_frame": {"kind": "before",
                                                                "day": "2025-06-01"},
      "compare": {"op": "exactly", "value": 1}}, True),
])
def test_a_purchase_history_target_counts_and_sums_past_orders(
        history: dict[str, Any], expected: bool):
    condition = {"type": "purchase_history", **history}

    assert passes(condition, history=SKI_AND_GOLF) is expected


def test_a_purchase_history_value_is_net_of_line_discounts():
    discounted = order("o1", "90", line("skis", "100", "Ski", discount="10"))
    condition = {"type": "purchase_history", "measure": "items", "aggregate": "value",
                 "categories": ["Ski"], "compare": {"op": "exactly", "value": 90}}

    assert passes(condition, history=(discounted,)) is True


def test_a_purchase_history_since_the_activity_started_ignores_older_orders():
    condition = {"type": "purchase_history", "time_frame": {"kind": "since_activity_start"},
                 "compare": {"op": "exactly", "value": 2}}

    assert passes(condition, history=SKI_AND_GOLF, start_date="2025-05-20") is True
    assert passes(condition, history=SKI_AND_GOLF, start_date="2025-06-10") is False


def test_since_activity_start_counts_an_order_sent_with_its_local_offset():
    act = activity(node("ordered", "places_order", "check"),
                   node("check", "target", "coupon", conditions=[
                       {"type": "purchase_history", "time_frame": {"kind": "since_activity_start"},
                        "compare": {"op": "at_least", "value": 1}}]),
                   coupon(), start_date="2025-06-01", time_zone="Europe/Paris")

    [decision] = play(act, order("o1", "10", occurred_at="2025-06-01T00:30:00+02:00"))

    assert actions(decision) == ["coupon"]


def test_since_activity_start_counts_days_in_the_activity_time_zone():
    act = activity(node("ordered", "places_order", "check"),
                   node("check", "target", "coupon", conditions=[
                       {"type": "purchase_history", "time_frame": {"kind": "since_activity_start"},
                        "compare": {"op": "at_least", "value": 1}}]),
                   coupon(), start_date="2025-06-01", time_zone="Europe/Paris")

    # 00:30 in Paris on the start date, the same instant as the test above, sent as UTC.
    [decision] = play(act, order("o1", "10", occurred_at="2025-05-31T22:30:00Z"))

    assert actions(decision) == ["coupon"]


def cart(*lines: dict[str, Any], at: datetime = NOW - DAY) -> ShopEvent:
    return event("CartUpdated", cart_id="cart-1", lines=list(lines), occurred_at=at)


FULL_CART = cart(line("skis", "100", "Ski"), line("wax", "10", "Ski", quantity=2))


@pytest.mark.parametrize(("target", "carts", "expected"), [
    ({"have": "any"}, (FULL_CART,), True),
    ({"have": "any"}, (), False),
    ({"have": "none"}, (), True),
    ({"have": "any"}, (FULL_CART, cart(at=NOW - DAY / 2)), False),  # emptied since
    ({"have": "all", "categories": ["ski", "Golf"]}, (FULL_CART,), False),
    ({"have": "all", "categories": ["Ski"], "products": ["wax"]}, (FULL_CART,), True),
    ({"have": "any", "products": ["racket", "skis"]}, (FULL_CART,), True),
    ({"have": "none", "products": ["racket"]}, (FULL_CART,), True),
    ({"have": "none", "categories": ["Ski"]}, (FULL_CART,), False),
    ({"item_count": {"op": "exactly", "value": 3}}, (FULL_CART,), True),
    ({"item_count": {"op": "at_least", "value": 4}}, (FULL_CART,), False),
    ({"value": {"op": "at_least", "value": 120}}, (FULL_CART,), True),
    ({"value": {"op": "less_than", "value": 120}}, (FULL_CART,), False),
])
def test_a_cart_target_looks_at_the_current_cart(
        target: dict[str, Any], carts: tuple[ShopEvent, ...], expected: bool):
    assert passes({"type": "cart", **target}, history=carts) is expected


def test_an_order_empties_the_cart():
    placed = order("o1", "120", occurred_at=NOW - DAY / 2)
    decisions = play(activity(node("r", "registers", "c"), coupon("c")), FULL_CART, placed)

    assert decisions[0].state.cart is not None
    assert decisions[1].state.cart is None
    assert passes({"type": "cart", "have": "any"}, history=(FULL_CART, placed)) is False


BOOTS_VIEW = event("CategoryViewed", category="Ski boots", parent_categories=["Ski", "Winter"],
                   occurred_at=NOW - DAY)


@pytest.mark.parametrize(("target", "expected"), [
    ({"kind": "category", "ids": ["ski boots"]}, True),
    ({"kind": "category", "ids": ["Ski"]}, True),  # a sub-category counts by default
    ({"kind": "category", "ids": ["Ski"], "include_subcategories": False}, False),
    ({"kind": "category", "ids": ["Ski", "Golf"], "have": "all"}, False),
    ({"kind": "category", "ids": ["Golf"], "have": "none"}, True),
    ({"kind": "category", "ids": ["Ski"], "times": 2}, False),
    ({"kind": "category", "ids": ["Ski"], "time_frame": {"kind": "last_days", "days": 1}}, True),
    ({"kind": "product", "ids": ["p1"]}, True),
    ({"kind": "product", "ids": ["p1"], "times": 3}, False),
])
def test_a_browsing_target_checks_viewed_categories_and_products(
        target: dict[str, Any], expected: bool):
    views = (BOOTS_VIEW, event("ProductViewed", product_id="p1", occurred_at=NOW - 2 * DAY),
             event("ProductViewed", product_id="p1", occurred_at=NOW - 3 * DAY))

    assert passes({"type": "browsing", **target}, history=views) is expected


def test_a_browsing_target_time_frame_leaves_older_views_out():
    condition = {"type": "browsing", "kind": "category", "ids": ["Ski"],
                 "time_frame": {"kind": "last_days", "days": 1}}
    old_view = event("CategoryViewed", category="Ski", occurred_at=NOW - 2 * DAY)

    assert passes(condition, history=(old_view,)) is False


ONLINE = (
    event("SearchPerformed", query="Rossignol skis", occurred_at=NOW - 2 * DAY),
    event("SearchPerformed", query="rossignol boots", occurred_at=NOW - 20 * DAY),
    event("PageVisited", url="https://shop.example/?utm_source=newsletter",
          url_parameters={"utm_source": "newsletter"}, referrer="https://www.partner.example",
          occurred_at=NOW - DAY),
)


@pytest.mark.parametrize(("target", "expected"), [
    ({"kind": "search", "match": {"rule": "starts", "value": "rossignol"}}, True),
    ({"kind": "search", "match": {"rule": "contains", "value": "wilson"}}, False),
    ({"kind": "search", "match": {"rule": "contains", "value": "rossignol"}, "times": 2}, True),
    ({"kind": "search", "match": {"rule": "contains", "value": "rossignol"}, "times": 2,
      "time_frame": {"kind": "last_days", "days": 7}}, False),
    ({"kind": "url_parameter", "parameter": "utm_source",
      "match": {"rule": "exact", "value": "Newsletter"}}, True),
    ({"kind": "url_parameter", "parameter": "utm_campaign", "match": {"rule": "any"}}, False),
    ({"kind": "referrer", "match": {"rule": "ends", "value": "partner.example"}}, True),
    ({"kind": "referrer", "match": {"rule": "contains", "value": "google"}}, False),
])
def test_an_online_behaviour_target_checks_searches_parameters_and_referrers(
        target: dict[str, Any], expected: bool):
    assert passes({"type": "online_behaviour", **target}, history=ONLINE) is expected


def test_a_visit_without_a_referrer_never_matches_any_referrer():
    direct = event("PageVisited", url="https://shop.example/", occurred_at=NOW - DAY)
    condition = {"type": "online_behaviour", "kind": "referrer", "match": {"rule": "any"}}

    assert passes(condition, history=(direct,)) is False


@pytest.mark.parametrize(("target", "expected"), [
    ({"satisfies": True, "kind": "review"}, True),
    ({"satisfies": False, "kind": "review"}, False),
    ({"satisfies": True, "kind": "comment"}, False),
    ({"satisfies": False, "kind": "comment"}, True),
    ({"satisfies": True, "kind": "any", "times": 2}, True),
    ({"satisfies": True, "kind": "review", "times": 2}, False),
])
def test_a_social_target_checks_participation_or_its_absence(
        target: dict[str, Any], expected: bool):
    acts = (event("SocialParticipation", kind="review", occurred_at=NOW - DAY),
            event("SocialParticipation", kind="like", occurred_at=NOW - DAY))

    assert passes({"type": "social", **target}, history=acts) is expected


NIGHT_IN_PARIS = {"type": "day_time", "start": "22:00", "end": "02:00",
                  "time_zone": "Europe/Paris"}


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2025, 6, 13, 21, 30, tzinfo=UTC), True),  # Fri 23:30 in Paris
    (datetime(2025, 6, 13, 23, 30, tzinfo=UTC), True),  # Sat 01:30 in Paris
    (datetime(2025, 6, 14, 0, 30, tzinfo=UTC), False),  # Sat 02:30 in Paris
    (datetime(2025, 6, 13, 19, 30, tzinfo=UTC), False),  # Fri 21:30 in Paris, 19:30 UTC
    (datetime(2025, 6, 13, 10, 0, tzinfo=UTC), False),  # noon
])
def test_a_day_time_window_ending_before_it_starts_wraps_past_midnight(
        at: datetime, expected: bool):
    assert passes(NIGHT_IN_PARIS, at=at) is expected


@pytest.mark.parametrize(("weekdays", "at", "expected"), [
    (["sat", "sun"], datetime(2025, 6, 15, 12, tzinfo=UTC), True),  # Sunday
    (["mon", "tue", "wed", "thu", "fri"], datetime(2025, 6, 15, 12, tzinfo=UTC), False),
    # Sunday 22:30 UTC is already Monday 00:30 in Paris.
    (["mon"], datetime(2025, 6, 15, 22, 30, tzinfo=UTC), True),
    (["sun"], datetime(2025, 6, 15, 22, 30, tzinfo=UTC), False),
])
def test_a_day_time_target_takes_weekdays_in_its_time_zone(
        weekdays: list[str], at: datetime, expected: bool):
    condition = {"type": "day_time", "weekdays": weekdays, "time_zone": "Europe/Paris"}

    assert passes(condition, at=at) is expected



def test_a_weekday_evening_window_belongs_to_the_day_it_starts():
    evenings = {"type": "day_time", "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                "start": "18:00", "end": "02:00", "time_zone": "Europe/Paris"}

    friday_late = passes(evenings, at=datetime(2025, 6, 13, 23, 30, tzinfo=UTC))  # Sat 01:30
    sunday_late = passes(evenings, at=datetime(2025, 6, 15, 23, 30, tzinfo=UTC))  # Mon 01:30

    assert (friday_late, sunday_late) == (True, False)

PROFILE = Profile(country="FR", city="Saint-Étienne", language="fr",
                  attributes={"tier": "Gold", "points": 150, "vip": True, "note": ""})


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("country", "equals", "fr", True),
    ("country", "equals", "DE", False),
    ("country", "not_equals", "DE", True),
    ("country", "not_equals", "FR", False),
    ("email", "not_equals", "a@b.c", True),  # missing is not equal
    ("city", "contains", "étienne", True),
    ("city", "contains", "Lyon", False),
    ("language", "exists", None, True),
    ("email", "exists", None, False),
    ("email", "not_exists", None, True),
    ("attributes.note", "exists", None, False),  # an empty custom field counts as missing
    ("country", "in", ["BE", "fr"], True),
    ("country", "in", ["BE", "CH"], False),
    ("attributes.tier", "in", ["gold", "platinum"], True),
    ("attributes.tier", "equals", "GOLD", True),
    ("attributes.points", "greater", 100, True),
    ("attributes.points", "greater", 150, False),
    ("attributes.points", "less", "1000", True),  # numbers, not text: "150" < "1000"
    ("attributes.vip", "equals", True, True),
    ("attributes.missing", "greater", 0, False),
    ("attributes.missing", "exists", None, False),
])
def test_an_attribute_target_compares_profile_and_custom_fields(
        field: str, op: str, value: Any, expected: bool):
    condition: dict[str, Any] = {"type": "attribute", "field": field, "op": op}
    if value is not None:
        condition["value"] = value

    assert passes(condition, state=customer(profile=PROFILE)) is expected


def test_all_conditions_of_a_target_must_hold():
    french = {"type": "attribute", "field": "country", "op": "equals", "value": "FR"}
    in_vip = {"type": "segment", "segments": ["vip"]}

    assert passes(french, in_vip, state=member_of("vip").model_copy(
        update={"profile": PROFILE})) is True
    assert passes(french, in_vip, state=customer(profile=PROFILE)) is False


# --- segment actions ---------------------------------------------------------------------------
def test_a_segment_added_earlier_in_the_flow_is_seen_by_a_later_target():
    act = activity(node("ordered", "places_order", "add"),
                   node("add", "add_to_segment", "check", segment="buyers"),
                   node("check", "target", "coupon",
                        conditions=[{"type": "segment", "segments": ["buyers"]}]),
                   coupon())

    [decision] = play(act, order("o1", "10"))

    assert actions(decision) == ["add", "coupon"]
    membership = decision.state.segments["buyers"]
    assert (membership.since, membership.until, membership.by) == (NOW, None, "act")
    assert [(h.segment, h.change) for h in decision.state.segment_history] == [("buyers",
                                                                                 "added")]


def test_a_time_limited_membership_ends_after_its_days():
    act = activity(node("registered", "registers", "add"),
                   node("add", "add_to_segment", segment="eligible", for_days=7))

    [decision] = play(act, event("CustomerRegistered"))

    [added] = [e for e in decision.effects if isinstance(e, SegmentAdded)]
    assert added.until == NOW + 7 * DAY
    assert decision.state.segments["eligible"].until == NOW + 7 * DAY
    assert decision.state.in_segment("eligible", NOW + 7 * DAY - timedelta(seconds=1))
    assert not decision.state.in_segment("eligible", NOW + 7 * DAY)


def test_removing_a_member_records_that_they_left():
    act = activity(node("ordered", "places_order", "remove"),
                   node("remove", "remove_from_segment", segment="eligible"))

    [decision] = play(act, order("o1", "10"), state=member_of("eligible"))

    [removed] = [e for e in decision.effects if isinstance(e, SegmentRemoved)]
    assert removed.segment == "eligible"
    assert "eligible" not in decision.state.segments
    assert [(h.segment, h.change) for h in decision.state.segment_history] == [("eligible",
                                                                                 "removed")]


def test_removing_a_customer_who_is_not_a_member_records_nothing():
    act = activity(node("ordered", "places_order", "remove"),
                   node("remove", "remove_from_segment", segment="eligible"))

    [decision] = play(act, order("o1", "10"), state=member_of("other"))

    assert actions(decision) == []
    assert decision.state.segment_history == []
    assert "other" in decision.state.segments


def test_removing_a_customer_whose_membership_expired_ends_it_once():
    """Not yet ended by a daily check: the exit is recorded here (row, history, statistics)."""
    act = activity(node("ordered", "places_order", "remove"),
                   node("remove", "remove_from_segment", segment="eligible"), repeatable=True)
    expired = member_of("eligible", until=NOW - DAY)
    assert not expired.in_segment("eligible", NOW)

    first, second = play(act, order("o1", "10"), order("o2", "10"), state=expired)

    assert actions(first) == ["remove"] and "eligible" not in first.state.segments
    assert [c.change for c in first.state.segment_history] == ["removed"]
    assert actions(second) == []


# --- effects and counters ----------------------------------------------------------------------
def test_every_effect_carries_its_idempotency_key():
    act = activity(node("registered", "registers", "mail"), mail(next="coupon"), coupon())

    [decision] = play(act, event("CustomerRegistered"))

    assert {(e.activity_id, e.subject, e.entry, e.at) for e in decision.effects} == {
        ("act", "customer:c1", 1, NOW)}
    assert [e.key for e in decision.effects if not isinstance(e, ElementReached)] == [
        "act/mail/customer:c1/1", "act/coupon/customer:c1/1"]


@pytest.mark.parametrize(("country", "counted"), [
    ("FR", ["registered", "french", "mail"]),
    ("DE", ["registered", "french"]),  # a failed target is reached, what follows is not
])
def test_each_element_reached_is_counted_once(country: str, counted: list[str]):
    act = activity(node("registered", "registers", "french"),
                   node("french", "target", "mail", conditions=[FRENCH]), mail())

    [decision] = play(act, registration(country))

    assert reached(decision) == counted


def test_paths_that_meet_again_act_only_once():
    act = activity(node("registered", "registers", "split"),
                   {"id": "split", "type": "branch", "mode": "all",
                    "paths": [{"name": "a", "next": "mail"}, {"name": "b", "next": "mail"}]},
                   mail())

    [decision] = play(act, event("CustomerRegistered"))

    assert actions(decision) == ["mail"]
    assert reached(decision) == ["registered", "split", "mail"]


def test_a_customer_resumed_at_a_later_trigger_is_counted_there_once():
    act = activity(*REGISTER_THEN_SEARCH)

    decisions = play(act, event("CustomerRegistered"),
                     event("SearchPerformed", query="ski", occurred_at=NOW + DAY))

    assert [el for d in decisions for el in reached(d)].count("searched") == 1


# --- consent -----------------------------------------------------------------------------------
def test_without_tracking_consent_searches_are_neither_kept_nor_reacted_to():
    act = activity(node("searched", "searches", "coupon", keyword={"rule": "contains",
                                                                    "value": "ski"}), coupon())

    refused, search = play(act, event("CustomerUpdated", consent={"tracking": False}),
                           event("SearchPerformed", query="ski", occurred_at=NOW + DAY))

    assert refused.state.consent.tracking is False
    assert search.state.behaviour == []
    assert actions(search) == []  # reacting to it would profile the customer all the same


def test_with_tracking_consent_searches_are_kept():
    [decision] = play([], event("SearchPerformed", query="ski", event_id="s-1"))

    assert [(o.at, o.kind, o.fields) for o in decision.state.behaviour] == [
        (NOW, "SearchPerformed", {"query": "ski"})]


def test_without_tracking_consent_orders_are_still_recorded():
    [decision] = play([], order("o1", "10"), state=customer(consent=ConsentState(tracking=False)))

    assert decision.state.order_count == 1
    assert decision.state.total_spent == Decimal("10")


# --- the index: an event meets only the activities it may start -----------------------------
def test_the_catalog_offers_an_event_only_the_triggers_its_keys_can_fire():
    def act(activity_id: str, trigger: dict) -> Activity:
        return Activity.model_validate({"id": activity_id, "name": activity_id, "elements": [
            {"id": "t", **trigger, "next": "c"},
            {"id": "c", "type": "issue_coupon", "promotion": "P"}]})

    catalog = Catalog([
        act("any-order", {"type": "places_order"}),
        act("ski-order", {"type": "places_order", "categories": ["Ski"]}),
        act("golf-order", {"type": "places_order", "categories": ["Golf"]}),
        act("promo", {"type": "checks_out_with_promotion", "promotion": "SALE"}),
        act("exact-search", {"type": "searches", "keyword": {"rule": "exact", "value": "Boots"}}),
        act("wishlist", {"type": "wait_for_event", "event": "WishListAdded"}),
    ])

    ski = order("o1", "10", {"product_id": "p", "unit_price": "10", "categories": ["ski"]},
                promotion_codes=["sale"])
    assert [a.id for a, _ in catalog.entries_for(ski.detail)] == ["any-order", "ski-order",
                                                                   "promo"]
    assert [a.id for a, _ in catalog.entries_for(
        event("SearchPerformed", query=" boots ").detail)] == ["exact-search"]
    assert catalog.entries_for(event("SearchPerformed", query="hats").detail) == []
    assert [a.id for a, _ in catalog.entries_for(
        event("CustomEvent", name="WishListAdded").detail)] == ["wishlist"]
    assert catalog.entries_for(event("CustomEvent", name="LinkClicked").detail) == []


def test_an_awaited_shop_event_with_an_exact_parameter_is_offered_only_when_it_matches():
    outlet = Activity.model_validate({"id": "outlet", "name": "Outlet", "elements": [
        {"id": "t", "type": "wait_for_event", "event": "CategoryViewed", "next": "coupon",
         "parameters": [{"name": "category", "match": {"rule": "exact", "value": "Outlet"}}]},
        {"id": "coupon", "type": "issue_coupon", "promotion": "P"}]})
    catalog = Catalog([outlet])

    assert catalog.entries_for(event("CategoryViewed", category="Shoes").detail) == []
    [(found, _)] = catalog.entries_for(event("CategoryViewed", category="outlet").detail)
    assert found.id == "outlet"
    [decision] = play(outlet, event("CategoryViewed", category="outlet"))
    assert actions(decision) == ["coupon"]


# --- coupons and the message's context -----------------------------------------------------
def test_a_coupon_code_issued_earlier_in_the_run_reaches_the_message_context():
    act = Activity.model_validate({"id": "thanks", "name": "Thanks", "elements": [
        {"id": "ordered", "type": "places_order", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "TEN", "valid_days": 7,
         "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "thanks"}]})
    ev = order("o-7", "42")
    decision = decide(customer(), ev, Catalog([act]), ev.detail.occurred_at,
                      codes=lambda: "K7XQ2M9PLR4T")

    [coupon] = [e for e in decision.effects if isinstance(e, CouponIssued)]
    [mail] = [e for e in decision.effects if e.type == "message"]
    assert coupon.code == "K7XQ2M9PLR4T"
    assert coupon.expires_at == ev.detail.occurred_at + timedelta(days=7)
    assert mail.context["coupon"] == {"code": "K7XQ2M9PLR4T", "promotion": "TEN",
                                      "expires_at": coupon.expires_at.isoformat()}
    assert mail.context["event"]["order_id"] == "o-7"
    assert mail.context["activity"] == {"id": "thanks", "name": "Thanks"}


def test_default_coupon_codes_are_unguessable_and_distinct():
    from dialogue.engine.flow import COUPON_ALPHABET, new_coupon_code

    codes = {new_coupon_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 12 and set(c) <= set(COUPON_ALPHABET) for c in codes)
