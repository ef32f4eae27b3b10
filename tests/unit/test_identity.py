"""Guest → customer (issue 12): the link at login, the merge, the unlink at logout, late events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import decide
from dialogue.engine.forget import forget, reborn, refused
from dialogue.engine.identity import decide_identity, hold, redirect_to
from dialogue.model.customer import ConsentState, CustomerState, Membership
from dialogue.model.effects import CouponIssued, MessageQueued, SegmentAdded, WaitStarted
from dialogue.model.events import ShopEvent

from tests.unit.conftest import NOW, activity, event

HOUR = timedelta(hours=1)


def searched_then_wait(repeatable: bool = False) -> Any:
    """A search starts a run that waits two days, then issues a coupon."""
    return activity(
        {"id": "searched", "type": "searches", "keyword": {"rule": "any"}, "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 2, "unit": "days", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "BACK"},
        repeatable=repeatable)


def guest_event(detail_type: str, pid: str = "p1", **detail: Any) -> ShopEvent:
    return event(detail_type, customer_id=None, personalization_id=pid, **detail)


def login(customer: str = "c1", pid: str = "p1", **detail: Any) -> ShopEvent:
    return event("CustomerLoggedIn", customer_id=customer, personalization_id=pid, **detail)


def guest_with_a_cart_and_a_waiting_run(catalog: Catalog) -> CustomerState:
    guest = CustomerState(subject="guest:p1", incarnation="g")
    for ev in (guest_event("SearchPerformed", query="boots", occurred_at=NOW - 3 * HOUR),
               guest_event("CartUpdated", cart_id="k", occurred_at=NOW - 2 * HOUR,
                           lines=[{"product_id": "boots", "unit_price": "90"}])):
        guest = decide(guest, ev, catalog, ev.detail.occurred_at).state
    return guest


def test_a_login_merges_the_guests_behaviour_cart_and_waiting_run_into_the_customer():
    catalog = Catalog([searched_then_wait()])
    guest = guest_with_a_cart_and_a_waiting_run(catalog)
    customer = CustomerState(subject="customer:c1", incarnation="c")

    result = decide_identity(customer, guest, login(), catalog, NOW)

    state = result.decision.state
    assert [o.kind for o in state.behaviour] == ["SearchPerformed"]
    assert state.cart is not None and state.cart.cart_id == "k"
    [waiting] = state.journeys["act"].waiting
    assert waiting.element == "wait"
    [timer] = [e for e in result.decision.effects if isinstance(e, WaitStarted)]
    assert (timer.subject, timer.incarnation, timer.due_at) == (
        "customer:c1", "c", waiting.due_at)
    # The guest is emptied and points at the customer.
    assert result.guest is not None
    assert result.guest.linked_to == "c1"
    assert (result.guest.behaviour, result.guest.cart, result.guest.journeys) == ([], None, {})


def test_a_redelivered_login_merges_nothing_twice():
    catalog = Catalog([searched_then_wait(repeatable=True)])
    guest = guest_with_a_cart_and_a_waiting_run(catalog)
    customer = CustomerState(subject="customer:c1", incarnation="c")
    ev = login()
    first = decide_identity(customer, guest, ev, catalog, NOW)
    assert first.guest is not None

    again = decide_identity(first.decision.state, guest, ev, catalog, NOW)

    assert again.decision.duplicate and again.guest is None


def test_a_guest_run_in_a_non_repeatable_activity_the_customer_went_through_does_not_start():
    catalog = Catalog([searched_then_wait()])
    guest = guest_with_a_cart_and_a_waiting_run(catalog)
    search = event("SearchPerformed", query="skis", occurred_at=NOW - 5 * HOUR)
    customer = decide(CustomerState(subject="customer:c1", incarnation="c"), search, catalog,
                      search.detail.occurred_at).state
    assert customer.journeys["act"].entries == 1

    result = decide_identity(customer, guest, login(), catalog, NOW)

    journey = result.decision.state.journeys["act"]
    assert journey.entries == 1 and len(journey.waiting) == 1  # the customer's own run only
    assert not any(isinstance(e, WaitStarted) for e in result.decision.effects)


def test_a_repeatable_activity_keeps_both_runs_numbered_apart():
    catalog = Catalog([searched_then_wait(repeatable=True)])
    guest = guest_with_a_cart_and_a_waiting_run(catalog)
    search = event("SearchPerformed", query="skis", occurred_at=NOW - 5 * HOUR)
    customer = decide(CustomerState(subject="customer:c1", incarnation="c"), search, catalog,
                      search.detail.occurred_at).state

    result = decide_identity(customer, guest, login(), catalog, NOW)

    journey = result.decision.state.journeys["act"]
    assert sorted(i.entry for i in journey.waiting) == [1, 2]


def test_a_guest_event_applied_before_the_merge_is_a_duplicate_for_the_customer():
    catalog = Catalog([searched_then_wait()])
    search = guest_event("SearchPerformed", query="boots", occurred_at=NOW - HOUR)
    guest = decide(CustomerState(subject="guest:p1"), search, catalog, NOW - HOUR).state
    merged = decide_identity(CustomerState(subject="customer:c1"), guest, login(), catalog, NOW)

    # Redelivered late: the browser is linked, so it goes to the customer, who has it already.
    assert merged.guest is not None and redirect_to(merged.guest, search.detail) == "c1"
    again = decide(merged.decision.state, search, catalog, NOW)

    assert again.duplicate
    assert merged.decision.state.journeys["act"].entries == 1  # the trigger fired once


def test_without_tracking_consent_the_guests_behaviour_is_not_merged_but_orders_are():
    catalog = Catalog([])
    guest = CustomerState(subject="guest:p1")
    for ev in (guest_event("SearchPerformed", query="boots"),
               guest_event("OrderPlaced", order_id="o1", total="10",
                           lines=[{"product_id": "x", "unit_price": "10"}])):
        guest = decide(guest, ev, catalog, NOW).state
    customer = CustomerState(subject="customer:c1", consent=ConsentState(tracking=False))

    state = decide_identity(customer, guest, login(), catalog, NOW).decision.state

    assert [o.kind for o in state.behaviour] == []
    assert [o.order_id for o in state.orders] == ["o1"] and state.order_count == 1


def test_a_registration_refusing_tracking_merges_no_behaviour():
    catalog = Catalog([])
    guest = decide(CustomerState(subject="guest:p1"),
                   guest_event("SearchPerformed", query="boots"), catalog, NOW).state
    registration = event("CustomerRegistered", customer_id="c1", personalization_id="p1",
                         consent={"tracking": False})

    state = decide_identity(CustomerState(subject="customer:c1"), guest, registration, catalog,
                            NOW).decision.state

    assert state.behaviour == [] and not state.consent.tracking


def test_a_logout_unlinks_the_browser_unless_the_shop_keeps_links():
    catalog = Catalog([])
    merged = decide_identity(CustomerState(subject="customer:c1"),
                             CustomerState(subject="guest:p1"), login(), catalog, NOW)
    assert merged.guest is not None
    logout = event("CustomerLoggedOut", customer_id="c1", personalization_id="p1",
                   occurred_at=NOW + HOUR)

    forgotten = decide_identity(merged.decision.state, merged.guest, logout, catalog, NOW + HOUR)
    kept = decide_identity(merged.decision.state, merged.guest, logout, catalog, NOW + HOUR,
                           keep_link_after_logout=True)

    assert forgotten.guest is not None and kept.guest is None
    before = guest_event("SearchPerformed", query="a", occurred_at=NOW + HOUR / 2)
    after = guest_event("SearchPerformed", query="b", occurred_at=NOW + 2 * HOUR)
    # A late event from the session still belongs to c1; the next shopper's does not.
    assert redirect_to(forgotten.guest, before.detail) == "c1"
    assert redirect_to(forgotten.guest, after.detail) is None
    assert redirect_to(merged.guest, after.detail) == "c1"  # "remember me": still linked


def test_the_shared_computer_customer_b_inherits_nothing_of_customer_a():
    """The seed's flaw: A logs in on P, is added to X, logs out; B logs in on P."""
    add_on_login = activity(
        {"id": "in", "type": "wait_for_event", "event": "CustomerLoggedIn", "next": "add"},
        {"id": "add", "type": "add_to_segment", "segment": "x"}, repeatable=True)
    catalog = Catalog([add_on_login])
    guest = CustomerState(subject="guest:p1")
    a = decide_identity(CustomerState(subject="customer:a"), guest, login("a"), catalog, NOW)
    assert a.guest is not None and a.decision.state.in_segment("x", NOW)
    out = decide_identity(a.decision.state, a.guest,
                          event("CustomerLoggedOut", customer_id="a", personalization_id="p1",
                                occurred_at=NOW + HOUR), catalog, NOW + HOUR)
    assert out.guest is not None
    b_state = CustomerState(subject="customer:b")
    # B's login is not a trigger here: only the merge could bring X.
    b = decide_identity(b_state, out.guest, login("b", occurred_at=NOW + 2 * HOUR),
                        Catalog([]), NOW + 2 * HOUR)

    assert not b.decision.state.in_segment("x", NOW + 2 * HOUR)
    assert not any(isinstance(e, SegmentAdded) for e in b.decision.effects)
    assert b.guest is not None and b.guest.linked_to == "b"


def coupon_and_mail_on_search() -> Any:
    return activity(
        {"id": "searched", "type": "searches", "keyword": {"rule": "any"}, "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "BACK", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"})


def test_a_guests_message_and_coupon_wait_for_a_link_then_go_to_the_customer():
    catalog = Catalog([coupon_and_mail_on_search()])
    search = guest_event("SearchPerformed", query="boots")
    decision = decide(CustomerState(subject="guest:p1", incarnation="g"), search, catalog, NOW)

    assert hold(decision, catalog) == {"GuestMessagesHeld": 2}

    assert [e.type for e in decision.effects if isinstance(e, MessageQueued | CouponIssued)] == []
    assert [e.type for e in decision.state.held] == ["coupon", "message"]
    merged = decide_identity(CustomerState(subject="customer:c1", incarnation="c"),
                             decision.state, login(), catalog, NOW + HOUR)
    released = [e for e in merged.decision.effects if isinstance(e, MessageQueued | CouponIssued)]
    assert [(e.type, e.subject, e.incarnation) for e in released] == [
        ("coupon", "customer:c1", "c"), ("message", "customer:c1", "c")]
    assert merged.guest is not None and merged.guest.held == []


def test_held_messages_older_than_a_week_are_dropped_and_counted():
    catalog = Catalog([coupon_and_mail_on_search()])
    old = guest_event("SearchPerformed", query="a", occurred_at=NOW - 8 * 24 * HOUR)
    first = decide(CustomerState(subject="guest:p1"), old, catalog, NOW - 8 * 24 * HOUR)
    hold(first)
    again = decide(first.state, guest_event("SearchPerformed", query="b"),
                   Catalog([coupon_and_mail_on_search().model_copy(update={"repeatable": True})]),
                   NOW)

    assert hold(again) == {"GuestMessagesHeld": 2, "GuestMessagesDropped_expired": 2}
    assert {e.at for e in again.state.held} == {NOW}


def test_a_customers_messages_are_not_held():
    catalog = Catalog([coupon_and_mail_on_search()])
    decision = decide(CustomerState(subject="customer:c1"), event("SearchPerformed", query="x"),
                      catalog, NOW)

    assert hold(decision, catalog) == {}
    assert len([e for e in decision.effects if isinstance(e, MessageQueued)]) == 1


def test_a_deletion_leaves_a_tombstone_refuses_earlier_events_and_starts_afresh_after():
    catalog = Catalog([coupon_and_mail_on_search()])
    registration = event("CustomerRegistered", profile={"email": "c1@example.com"},
                         consent={"email": True})
    state = decide(CustomerState(subject="customer:c1", incarnation="c",
                                 segments={"x": Membership(since=NOW)}),
                   registration, catalog, NOW).state

    gone = forget(state, "del-1", NOW + HOUR, NOW + HOUR)

    assert [(e.type, e.segment) for e in gone.effects] == [("segment_removed", "x")]
    tomb = gone.state
    assert (tomb.profile.email, tomb.segments, tomb.deleted_at) == (None, {}, NOW + HOUR)
    assert forget(tomb, "del-1", NOW + HOUR, NOW + 2 * HOUR).duplicate  # redelivered
    assert refused(tomb, NOW + HOUR) and not refused(tomb, NOW + 2 * HOUR)
    fresh = reborn(tomb, "evt-later")
    assert fresh.deleted_at is None and fresh.incarnation not in ("", "c")
    assert fresh.incarnation == reborn(tomb, "evt-later").incarnation  # a retry draws the same


def test_the_guests_managed_segment_goes_to_the_customer_and_its_rule_based_ones_are_redone():
    """What the guest earned is the customer's: a managed membership moves (entered for the
    customer, left for the guest id); a rule-based one is worked out from the merged facts."""
    from dialogue.model.effects import SegmentRemoved
    from dialogue.model.segment import Segment

    buyers = Segment.model_validate({"id": "buyers", "name": "buyers", "kind": "rule",
                                     "time_zone": "Europe/Paris", "rule": {
                                         "field": "orders.count", "op": "greater", "value": 0}})
    catalog = Catalog([], [buyers, Segment(id="x", name="X")])
    order = guest_event("OrderPlaced", order_id="o1", total="30", occurred_at=NOW - HOUR,
                        lines=[{"product_id": "p", "unit_price": "30"}])
    guest = decide(CustomerState(subject="guest:p1", incarnation="g"), order, catalog,
                   NOW - HOUR).state
    guest.segments = {"x": Membership(since=NOW - HOUR, until=NOW + 9 * HOUR, by="act"),
                      "buyers": Membership(since=NOW - HOUR, by="rule")}

    logged_in = login()
    result = decide_identity(CustomerState(subject="customer:c1", incarnation="c"), guest,
                             logged_in, catalog, NOW)

    state, effects = result.decision.state, result.decision.effects
    assert state.in_segment("x", NOW) and state.segments["x"].until == NOW + 9 * HOUR
    assert state.in_segment("buyers", NOW)  # from the guest's order, now the customer's
    assert sorted((e.subject, e.segment) for e in effects if isinstance(e, SegmentAdded)) == [
        ("customer:c1", "buyers"), ("customer:c1", "x")]
    assert sorted((e.subject, e.segment) for e in effects if isinstance(e, SegmentRemoved)) == [
        ("guest:p1", "buyers"), ("guest:p1", "x")]
    assert result.guest is not None and result.guest.segments == {}
    # Redelivered: nothing moves twice.
    again = decide_identity(state, result.guest, logged_in, catalog, NOW)
    assert again.decision.duplicate


def test_a_membership_the_customer_has_already_is_not_entered_again():
    catalog = Catalog([])
    guest = CustomerState(subject="guest:p1", segments={"x": Membership(since=NOW, by="act")})
    customer = CustomerState(subject="customer:c1",
                             segments={"x": Membership(since=NOW - HOUR, by="other")})

    result = decide_identity(customer, guest, login(), catalog, NOW)

    assert result.decision.state.segments["x"].by == "other"
    assert not any(isinstance(e, SegmentAdded) for e in result.decision.effects)
    assert result.guest is not None and result.guest.segments == {}


def test_an_activity_that_drops_a_guests_messages_drops_them_and_says_why():
    dropping = coupon_and_mail_on_search().model_copy(update={"guest_messages": "drop"})
    catalog = Catalog([dropping])
    decision = decide(CustomerState(subject="guest:p1", incarnation="g"),
                      guest_event("SearchPerformed", query="boots"), catalog, NOW)

    assert hold(decision, catalog) == {"GuestMessagesDropped_guest": 2}

    assert [e for e in decision.effects if isinstance(e, MessageQueued | CouponIssued)] == []
    assert decision.state.held == []
    merged = decide_identity(CustomerState(subject="customer:c1", incarnation="c"),
                             decision.state, login(), catalog, NOW + HOUR)
    assert not [e for e in merged.decision.effects if isinstance(e, MessageQueued | CouponIssued)]


class _States:
    """Customer states in memory, versioned as the store's are."""

    def __init__(self, *states: CustomerState) -> None:
        self.states = {s.subject: s for s in states}

    def load(self, subject: str) -> CustomerState:
        return self.states.get(subject, CustomerState(subject=subject)).model_copy()

    def commit(self, state: CustomerState, effects: Any, before: Any = None,
               also: Any = None) -> None:
        self.states[state.subject] = state.model_copy(update={"version": state.version + 1})


class _Rows:
    """Rows in other partitions; `die` names the step at which this attempt is killed."""

    def __init__(self, die: str | None) -> None:
        self.die, self.guests, self.rows = die, {"guest:p1"}, {"customer:c1": 3, "guest:p1": 1}

    def erase_guest(self, subject: str, customer_id: str) -> bool:
        found = subject in self.guests
        self.guests.discard(subject)
        return found

    def erase_rows(self, subjects: list[str]) -> dict[str, int]:
        if self.die == "rows":
            raise ConnectionError("killed before the rows")
        done = {"job": sum(self.rows.pop(s, 0) for s in subjects)}
        if self.die == "after rows":
            raise ConnectionError("killed before the tombstone forgets the browsers")
        return done


def test_an_erasure_killed_at_any_step_is_finished_by_its_retry():
    from dialogue.identity import erase_customer

    for die in ("rows", "after rows"):
        store = _States(CustomerState(subject="customer:c1", version=3, browsers=["p1"],
                                      profile={"email": "c1@example.com"}))
        rows = _Rows(die)
        try:
            erase_customer(store, rows, "c1", "del-1", NOW, NOW, lambda *_: None)
            raise AssertionError("the first attempt was to be killed")
        except ConnectionError:
            pass
        tomb = store.states["customer:c1"]
        assert tomb.deleted_at == NOW and tomb.profile.email is None
        assert tomb.browsers == ["p1"]  # still known: the retry needs them

        rows.die = None
        decision, done = erase_customer(store, rows, "c1", "del-1", NOW, NOW, lambda *_: None)

        assert decision is None  # the tombstone was there: a duplicate, yet the rows went
        assert (rows.guests, rows.rows) == (set(), {})
        assert store.states["customer:c1"].browsers == []
