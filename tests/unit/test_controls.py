"""Journey controls in the pure engine: re-entry rules, goals, pause and resume, holdouts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dialogue.engine import controls
from dialogue.engine.catalog import Catalog
from dialogue.engine.checks import load_catalog
from dialogue.engine.daily import daily
from dialogue.engine.decide import Decision, decide
from dialogue.engine.flow import EXIT
from dialogue.engine.timers import TimerRef
from dialogue.engine.wake import wake
from dialogue.model.activity import Activity
from dialogue.model.customer import CustomerState, Membership
from dialogue.model.effects import ElementReached, MessageQueued, WaitStarted
from dialogue.model.events import ShopEvent

from tests.unit.conftest import NOW, activity, event

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def customer(subject: str = "customer:c1", **fields: Any) -> CustomerState:
    return CustomerState(subject=subject, **fields)


def ordered(at=NOW, n: int = 1, **detail: Any) -> ShopEvent:
    return event("OrderPlaced", order_id=f"o{n}-{at.isoformat()}", total="20",
                 lines=[{"product_id": "p", "unit_price": "20"}], occurred_at=at, **detail)


def custom(name: str, at=NOW, **parameters: str) -> ShopEvent:
    return event("CustomEvent", name=name, parameters=parameters, occurred_at=at)


def counts(decision: Decision) -> list[str]:
    return [e.element_id for e in decision.effects
            if isinstance(e, ElementReached) and e.element_id.startswith("@")
            and not e.element_id.startswith(EXIT)]  # exits: test_exits.py


def messages(decision: Decision) -> list[MessageQueued]:
    return [e for e in decision.effects if isinstance(e, MessageQueued)]


def thanks(**props: Any) -> Activity:
    """Every order: a mail at once."""
    return activity({"id": "ordered", "type": "places_order", "next": "mail"},
                    {"id": "mail", "type": "send_message", "channel": "email",
                     "template": "welcome", "send_immediately": True}, **props)


def play(act: Activity | list[Activity], events: list[ShopEvent],
         state: CustomerState | None = None) -> tuple[CustomerState, list[Decision]]:
    catalog = Catalog(act if isinstance(act, list) else [act])
    state = state or customer()
    out = []
    for ev in events:
        decision = decide(state, ev, catalog, ev.detail.occurred_at)
        state = decision.state
        out.append(decision)
    return state, out


# --- 1. re-entry rules ---------------------------------------------------------------------------
def test_max_entries_lets_a_customer_in_that_many_times_and_counts_the_refusals():
    act = thanks(repeatable=True, max_entries=2)

    state, decisions = play(act, [ordered(NOW + n * HOUR, n) for n in range(4)])

    assert [len(messages(d)) for d in decisions] == [1, 1, 0, 0]
    assert [counts(d) for d in decisions[2:]] == [["@not_entered:max_entries"]] * 2
    assert state.journeys["act"].entries == 2


def test_min_interval_keeps_a_customer_out_until_it_has_passed_since_their_last_entry():
    act = thanks(repeatable=True, min_interval={"unit": "days", "amount": 1})
    at = [NOW, NOW + 23 * HOUR, NOW + DAY, NOW + DAY + HOUR]

    _, decisions = play(act, [ordered(t, n) for n, t in enumerate(at)])

    assert [len(messages(d)) for d in decisions] == [1, 0, 1, 0]
    assert counts(decisions[1]) == ["@not_entered:min_interval"]


@pytest.mark.parametrize("rule", ['"max_entries": 3',
                                  '"min_interval": {"unit": "days", "amount": 7}'])
def test_reentry_rules_on_a_non_repeatable_activity_are_refused_with_their_path(rule: str):
    text = ('{"id": "a", "name": "A", ' + rule + ', "elements": [{"id": "t", "type": '
            '"registers", "next": "m"}, {"id": "m", "type": "send_message", "channel": "email", '
            '"template": "welcome"}]}')
    _, problems = load_catalog([("a.json", text)], [], [])
    [problem] = problems
    assert problem.path == f"$.{rule.split(chr(34))[1]}"
    assert "only for a repeatable activity" in problem.reason


# --- 2. goals ------------------------------------------------------------------------------------
def nurture(**props: Any) -> Activity:
    """Registered: a mail, a week's wait, a reminder; an order is the goal."""
    return activity(
        {"id": "registered", "type": "registers", "next": "hello"},
        {"id": "hello", "type": "send_message", "channel": "email", "template": "welcome",
         "next": "wait"},
        {"id": "wait", "type": "wait", "unit": "days", "amount": 7, "next": "reminder"},
        {"id": "reminder", "type": "send_message", "channel": "email", "template": "welcome"},
        **{"goals": [{"event": "OrderPlaced"}], **props})


def test_a_goal_event_ends_the_run_at_once_and_is_counted_so_its_timer_finds_nobody():
    act = nurture()
    state, [entered, goal] = play(act, [event("CustomerRegistered"), ordered(NOW + DAY)])

    assert counts(goal) == ["@goal"] and messages(goal) == []
    assert state.journeys["act"].waiting == []
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]
    late = wake(state, Catalog([act]), TimerRef.from_effect(started), NOW + 8 * DAY)
    assert late.duplicate and late.effects == []  # no reminder


def test_a_goal_event_with_parameters_needs_them_to_match():
    act = nurture(goals=[{"event": "Subscribed", "parameters": [
        {"name": "list", "match": {"rule": "exact", "value": "news"}}]}])

    state, [_, other, goal] = play(act, [event("CustomerRegistered"),
                                         custom("Subscribed", NOW + HOUR, list="offers"),
                                         custom("Subscribed", NOW + 2 * HOUR, list="News")])

    assert counts(other) == [] and counts(goal) == ["@goal"]
    assert state.journeys["act"].waiting == []


def test_a_goal_condition_ends_the_run_at_the_timer_instead_of_the_next_message():
    act = nurture(goals=[{"conditions": [{"type": "segment", "segments": ["vip"]}]}])
    state, [entered] = play(act, [event("CustomerRegistered")])
    state.segments["vip"] = Membership(since=NOW + DAY)
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]

    woken = wake(state, Catalog([act]), TimerRef.from_effect(started), NOW + 7 * DAY)

    assert counts(woken) == ["@goal"] and messages(woken) == []
    assert woken.state.journeys["act"].waiting == []


def test_a_goal_condition_is_checked_by_the_daily_check():
    act = nurture(goals=[{"conditions": [{"type": "segment", "segments": ["vip"],
                                          "match": "none"}]}])
    state, _ = play(act, [event("CustomerRegistered")],
                    customer(segments={"vip": Membership(since=NOW - DAY)}))
    del state.segments["vip"]  # left the segment

    checked = daily(state, Catalog([act]), NOW + DAY, act.zone)

    assert counts(checked) == ["@goal"] and checked.state.journeys["act"].waiting == []


@pytest.mark.parametrize("goal", [{}, {"event": "X", "conditions": [
    {"type": "segment", "segments": ["vip"]}]}, {"parameters": [
        {"name": "a", "match": {"rule": "exact", "value": "b"}}],
        "conditions": [{"type": "segment", "segments": ["vip"]}]}])
def test_a_goal_is_an_event_or_conditions(goal: dict[str, Any]):
    with pytest.raises(ValueError, match="goal"):
        nurture(goals=[goal])


# --- 3. pause and resume -------------------------------------------------------------------------
def paused_and_resumed(act: Activity) -> tuple[Decision, Decision, Decision]:
    """Entered, paused before the wait ended, resumed a day after it did."""
    state, [entered] = play(act, [event("CustomerRegistered")])
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]
    paused = Catalog([act.model_copy(update={"state": "paused"})])
    held = wake(state, paused, TimerRef.from_effect(started), NOW + 7 * DAY)
    [again] = [e for e in held.effects if isinstance(e, WaitStarted)]
    still = wake(held.state, paused, TimerRef.from_effect(again), again.due_at)
    [later] = [e for e in still.effects if isinstance(e, WaitStarted)]
    resumed = wake(still.state, Catalog([act]), TimerRef.from_effect(later), NOW + 8 * DAY)
    return held, still, resumed


def test_a_wait_that_ends_while_paused_keeps_its_place_and_goes_on_on_resume():
    held, still, resumed = paused_and_resumed(nurture())

    assert messages(held) == [] and counts(held) == ["@paused"]
    assert [i.element for i in held.state.journeys["act"].waiting] == ["wait"]
    assert messages(still) == [] and counts(still) == []  # counted once per wait
    [reminder] = messages(resumed)
    assert reminder.element_id == "reminder" and resumed.state.journeys["act"].waiting == []


@pytest.mark.parametrize(("on_resume", "at_once"), [("at_once", True),
                                                     ("next_send_window", False)])
def test_on_resume_says_whether_the_catch_up_goes_at_once_or_at_the_send_time(
        on_resume: str, at_once: bool):
    act = nurture(on_resume=on_resume)
    act = act.model_copy(update={"elements": [
        *act.elements[:3], act.elements[3].model_copy(update={"send_immediately": True})]})

    *_, resumed = paused_and_resumed(act)

    [reminder] = messages(resumed)
    assert reminder.send_immediately is at_once


def test_nobody_enters_a_paused_activity_and_an_awaited_event_does_not_move_them_on():
    act = activity({"id": "registered", "type": "registers", "next": "wish"},
                   {"id": "wish", "type": "wait_for_event", "event": "Wished", "next": "mail"},
                   {"id": "mail", "type": "send_message", "channel": "email",
                    "template": "welcome"})
    state, _ = play(act, [event("CustomerRegistered")])
    paused = act.model_copy(update={"state": "paused"})

    state, [wished] = play(paused, [custom("Wished", NOW + HOUR)], state)
    assert messages(wished) == [] and [i.element for i in state.journeys["act"].waiting] == [
        "wish"]
    _, [other] = play(paused, [event("CustomerRegistered")], customer("customer:c2"))
    assert other.state.journeys == {}


def test_a_daily_check_keeps_a_paused_activity_s_customers_but_drops_a_deactivated_one_s():
    act = nurture()
    state, _ = play(act, [event("CustomerRegistered")])
    for status, kept in (("paused", True), ("inactive", False)):
        checked = daily(state, Catalog([act.model_copy(update={"state": status})]),
                        NOW + DAY, act.zone)
        assert bool(checked.state.journeys["act"].waiting) is kept, status


# --- 4. holdout ----------------------------------------------------------------------------------
def test_a_holdout_is_deterministic_near_its_percentage_and_walks_without_actions():
    act = nurture(holdout={"percent": 20})
    subjects = [f"customer:{n}" for n in range(2000)]
    held = [s for s in subjects if controls.in_holdout(act, s)]
    assert 0.17 < len(held) / len(subjects) < 0.23
    assert held == [s for s in subjects if controls.in_holdout(act, s)]

    state, [entered, goal] = play(act, [event("CustomerRegistered"), ordered(NOW + DAY)],
                                  customer(held[0]))
    assert messages(entered) == [] and counts(entered) == ["@holdout"]
    assert [i.holdout for i in entered.state.journeys["act"].waiting] == [True]
    assert counts(goal) == ["@holdout_goal"]

    other = next(s for s in subjects if s not in held)
    _, [treated] = play(act, [event("CustomerRegistered")], customer(other))
    assert [m.element_id for m in messages(treated)] == ["hello"] and counts(treated) == []


def test_a_holdout_customer_who_waits_gets_no_message_at_the_end_of_the_wait():
    act = nurture(holdout={"percent": 99})
    subject = next(f"customer:{n}" for n in range(100)
                   if controls.in_holdout(act, f"customer:{n}"))
    state, [entered] = play(act, [event("CustomerRegistered")], customer(subject))
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]

    woken = wake(state, Catalog([act]), TimerRef.from_effect(started), NOW + 7 * DAY)

    assert messages(woken) == [] and woken.state.journeys["act"].waiting == []


# --- 7. safe editing -----------------------------------------------------------------------------
def edited(act: Activity, **changes: Any) -> Activity:
    return Activity.model_validate({**act.model_dump(mode="json"), **changes})


def test_an_entry_records_the_activity_s_version_and_an_edit_changes_it():
    act = nurture()
    state, _ = play(act, [event("CustomerRegistered")])
    assert state.journeys["act"].version == act.version
    assert edited(act, name="Renamed").version != act.version
    assert edited(act, state="paused").version == act.version  # pausing is not an edit


def test_a_customer_waiting_at_a_removed_element_goes_on_where_moved_says_or_ends_counted():
    act = nurture()
    state, [entered] = play(act, [event("CustomerRegistered")])
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]
    elements = act.model_dump(mode="json")["elements"]
    renamed = [*elements[:1], {**elements[1], "next": "wait2"},
               {**elements[2], "id": "wait2", "amount": 1}, elements[3]]

    moved = wake(state, Catalog([edited(act, elements=renamed, moved={"wait": "wait2"})]),
                 TimerRef.from_effect(started), NOW + 7 * DAY)
    assert counts(moved) == ["@moved"] and messages(moved) == []
    [instance] = moved.state.journeys["act"].waiting
    assert instance.element == "wait2" and instance.due_at == NOW + 8 * DAY

    ended = wake(state, Catalog([edited(act, elements=renamed)]),
                 TimerRef.from_effect(started), NOW + 7 * DAY)
    assert counts(ended) == ["@ended:element_removed"] and messages(ended) == []
    assert ended.state.journeys["act"].waiting == []


def test_the_daily_check_moves_a_customer_waiting_at_a_removed_trigger():
    act = activity({"id": "registered", "type": "registers", "next": "wish"},
                   {"id": "wish", "type": "wait_for_event", "event": "Wished", "next": "mail"},
                   {"id": "mail", "type": "send_message", "channel": "email",
                    "template": "welcome"})
    state, _ = play(act, [event("CustomerRegistered")])
    now = edited(act, moved={"wish": "mail"}, elements=[
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"}])

    checked = daily(state, Catalog([now]), NOW + DAY, act.zone)

    assert counts(checked) == ["@moved"]
    assert [m.element_id for m in messages(checked)] == ["mail"]
    assert checked.state.journeys["act"].waiting == []


@pytest.mark.parametrize(("moved", "error"), [({"hello": "wait"}, "still an element"),
                                              ({"gone": "nowhere"}, "which is no element")])
def test_moved_names_a_removed_element_and_an_existing_one(moved: dict[str, str], error: str):
    with pytest.raises(ValueError, match=error):
        nurture(moved=moved)


def test_validate_against_shows_what_an_edit_does_to_waiting_customers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from dialogue.local.cli import main

    old = nurture().model_dump(mode="json", exclude_defaults=True)
    old["elements"].insert(3, {"id": "wish", "type": "wait_for_event", "event": "Wished",
                               "timeout": {"unit": "days", "amount": 1, "next": "reminder"},
                               "next": "reminder"})
    old["elements"][2]["next"] = "wish"
    new = nurture(moved={"wish": "reminder"}, state="paused").model_dump(
        mode="json", exclude_defaults=True)
    new["elements"][2]["amount"] = 3
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    root = Path(__file__).resolve().parents[2] / "examples"

    status = main(["validate", str(tmp_path / "new.json"), "--segments", str(root / "segments"),
                   "--templates", str(root / "templates"), "--against",
                   str(tmp_path / "old.json")])

    out = capsys.readouterr().out.splitlines()
    assert status == 0
    old_version = Activity.model_validate(old).version
    assert out == [
        f"activity act: version {old_version} → {Activity.model_validate(new).version}",
        "  waiting at 'wait' (a wait of 7 days): keep their place; their wait still ends when "
        "first set (new entries wait 3 days); then go on at 'reminder' (was 'wish')",
        "  waiting at 'wish' (wait_for_event, timeout 1 days): removed: they go on at "
        "'reminder' (counted @moved)",
        "  state active → paused: nobody enters or goes on until it is active again"]


# --- 8. keyed runs -------------------------------------------------------------------------------
def per_order(**props: Any) -> Activity:
    """Each order: wait two days for its delivery, else a reminder naming the order."""
    return activity(
        {"id": "ordered", "type": "places_order", "next": "delivered"},
        {"id": "delivered", "type": "wait_for_event", "event": "Delivered", "next": "thanks",
         "timeout": {"unit": "days", "amount": 2, "next": "late"}},
        {"id": "thanks", "type": "send_message", "channel": "email", "template": "welcome"},
        {"id": "late", "type": "send_message", "channel": "email", "template": "late"},
        **{"repeatable": True, "key": "order_id", **props})


def keyed_order(order_id: str, at=NOW) -> ShopEvent:
    return event("OrderPlaced", order_id=order_id, total="20", occurred_at=at,
                 lines=[{"product_id": "p", "unit_price": "20"}])


def test_keyed_runs_wait_side_by_side_and_an_event_reaches_its_own_run_only():
    act = per_order(goals=[{"event": "Cancelled"}])
    state, decisions = play(act, [keyed_order("1001"), keyed_order("1002", NOW + HOUR),
                                  custom("Delivered", NOW + 2 * HOUR, order_id="1002")])

    assert sorted((i.key, i.element) for i in decisions[1].state.journeys["act"].waiting) == [
        ("1001", "delivered"), ("1002", "delivered")]
    [thanks] = messages(decisions[2])
    assert thanks.context["run"] == {"key": "1002"}
    assert [(i.key, i.element) for i in state.journeys["act"].waiting] == [("1001", "delivered")]

    # The timeout of 1001's run: the reminder names its order.
    [started] = [e for e in decisions[0].effects if isinstance(e, WaitStarted)]
    late = wake(state, Catalog([act]), TimerRef.from_effect(started), NOW + 2 * DAY)
    assert [(m.element_id, m.context["run"]) for m in messages(late)] == [
        ("late", {"key": "1001"})]


def test_a_keyed_goal_ends_its_own_run_and_the_same_key_does_not_start_a_second_one():
    act = activity(
        {"id": "left", "type": "wait_for_event", "event": "CartLeft", "next": "wait"},
        {"id": "wait", "type": "wait", "unit": "days", "amount": 1, "next": "nudge"},
        {"id": "nudge", "type": "send_message", "channel": "email", "template": "welcome"},
        repeatable=True, key="cart_id", goals=[{"event": "Bought"}])
    state, decisions = play(act, [custom("CartLeft", NOW, cart_id="a"),
                                  custom("CartLeft", NOW + HOUR, cart_id="b"),
                                  custom("Bought", NOW + 2 * HOUR, cart_id="a"),
                                  custom("CartLeft", NOW + 3 * HOUR, cart_id="b")])

    assert counts(decisions[2]) == ["@goal"]
    assert counts(decisions[3]) == ["@not_entered:run_under_way"]
    assert [i.key for i in state.journeys["act"].waiting] == ["b"]
    assert state.journeys["act"].entries == 2


def test_a_key_needs_an_event_triggered_repeatable_activity():
    with pytest.raises(ValueError, match="repeatable"):
        per_order(repeatable=False)
    with pytest.raises(ValueError, match="event trigger"):
        activity({"id": "b", "type": "birthday", "next": "m"},
                 {"id": "m", "type": "send_message", "channel": "email", "template": "w"},
                 repeatable=True, key="order_id")


# --- 10. branch on a message's outcome -----------------------------------------------------------
def fallback() -> Activity:
    """A mail; opened within 2 days → a thank-you coupon; else an SMS."""
    return activity(
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "next": "opened"},
        {"id": "opened", "type": "message_outcome", "message": "mail", "outcome": "opened",
         "next": "coupon", "timeout": {"unit": "days", "amount": 2, "next": "sms"}},
        {"id": "coupon", "type": "issue_coupon", "promotion": "OPENED"},
        {"id": "sms", "type": "send_message", "channel": "sms", "template": "hello"})


def opened(template: str, campaign: str = "act", at=NOW + HOUR) -> ShopEvent:
    """The CustomEvent the engagement function makes of SES's `Email Opened`."""
    return custom("EmailOpened", at, campaign=campaign, template=template)


def test_an_open_of_that_mail_takes_the_opened_path_and_its_timer_then_finds_nobody():
    act = fallback()
    state, [entered, other, read] = play(act, [event("CustomerRegistered"),
                                               opened("welcome", campaign="another"),
                                               opened("welcome")])

    assert [e.element_id for e in other.effects] == []  # another activity's mail
    assert [e.element_id for e in read.effects if not isinstance(e, ElementReached)] == [
        "coupon"]
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]
    late = wake(state, Catalog([act]), TimerRef.from_effect(started), NOW + 2 * DAY)
    assert late.duplicate and messages(late) == []


def test_no_open_within_the_time_takes_the_fallback_sms():
    act = fallback()
    state, [entered] = play(act, [event("CustomerRegistered")])
    [started] = [e for e in entered.effects if isinstance(e, WaitStarted)]

    late = wake(state, Catalog([act]), TimerRef.from_effect(started), NOW + 2 * DAY)

    assert [(m.element_id, m.channel) for m in messages(late)] == [("sms", "sms")]


@pytest.mark.parametrize(("message", "outcome", "path", "reason"), [
    ("nowhere", "opened", "message", "is not an e-mail send_message"),
    ("sms", "delivered", "outcome", "'delivered' of 'sms', an SMS: dialogue receives no SMS "
                                    "delivery status"),
    ("sms", "bounced", "outcome", "'bounced' of 'sms', an SMS: dialogue receives no SMS "
                                  "delivery status"),
    ("sms", "opened", "outcome", "outcomes are e-mail's only")])
def test_a_message_outcome_follows_an_email_of_the_activity(message: str, outcome: str,
                                                             path: str, reason: str):
    doc = fallback().model_dump(mode="json", exclude_defaults=True)
    doc["elements"][2].update(message=message, outcome=outcome)
    _, problems = load_catalog([("a.json", json.dumps(doc))], [], [])
    assert [(p.path, reason in p.reason) for p in problems] == [(f"$.elements[2].{path}", True)]


@pytest.mark.parametrize("outcome", ["delivered", "bounced"])
def test_a_delivery_or_bounce_of_that_mail_takes_its_path_and_not_the_other(outcome: str):
    act = fallback()
    doc = act.model_dump(mode="json", exclude_defaults=True)
    doc["elements"][2]["outcome"] = outcome
    act = Activity.model_validate(doc)
    name = {"delivered": "EmailDelivered", "bounced": "EmailBounced"}[outcome]
    other = {"delivered": "EmailBounced", "bounced": "EmailDelivered"}[outcome]
    state, [_, wrong, right] = play(act, [
        event("CustomerRegistered"), custom(other, NOW + HOUR, campaign="act", template="welcome"),
        custom(name, NOW + HOUR, campaign="act", template="welcome")])

    assert [e.element_id for e in wrong.effects if not isinstance(e, ElementReached)] == []
    assert [e.element_id for e in right.effects if not isinstance(e, ElementReached)] == [
        "coupon"]


# --- the counts in `dialogue simulate` -----------------------------------------------------------
def test_a_count_row_follows_its_schema_and_reads_in_the_timeline():
    from dialogue.local.simulate import timeline
    from jsonschema import Draft202012Validator

    root = Path(__file__).resolve().parents[2]
    schema = Draft202012Validator(json.loads(
        (root / "docs/schema/simulate-row.schema.json").read_text()))
    row = {"at": "2027-01-08T00:00:00Z", "customer": None, "activity": "nurture",
           "element": "@goal", "effect": "counted", "count": 3,
           "reason": controls.describe(controls.GOAL)}
    assert list(schema.iter_errors(row)) == []
    message = {"at": "2027-01-08T00:00:00Z", "customer": None, "activity": "a", "element": "m",
               "effect": "message", "channel": "email", "template": "t", "status": "sent"}
    assert list(schema.iter_errors(message)) != []  # a message belongs to a customer
    assert "customers                3 × reached goal" in timeline([row])
    assert controls.describe("@capped:1 per 1 days") == "capped: 1 per 1 days"
    assert controls.describe("@not_entered:max_entries") == "not entered: max entries"


# --- the example ---------------------------------------------------------------------------------
def test_the_back_in_stock_example_runs_per_product_a_week_apart_and_an_order_ends_it():
    root = Path(__file__).resolve().parents[2]
    act = Activity.model_validate_json(
        (root / "examples/activities/14-back-in-stock-controls.json").read_text())
    subject = next(f"customer:{n}" for n in range(100)
                   if not controls.in_holdout(act, f"customer:{n}"))
    state, decisions = play(act, [custom("BackInStock", NOW, product_id="skis"),
                                  custom("BackInStock", NOW + HOUR, product_id="boots"),
                                  custom("BackInStock", NOW + 2 * HOUR, product_id="skis"),
                                  ordered(NOW + DAY),
                                  custom("BackInStock", NOW + 8 * DAY, product_id="boots")],
                            customer(subject))

    assert [len(messages(d)) for d in decisions] == [1, 0, 0, 0, 1]
    assert [counts(d) for d in decisions[1:4]] == [
        ["@not_entered:min_interval"],   # another product within the week
        ["@not_entered:run_under_way"],  # the same product: its run is under way
        ["@goal"]]                       # an order ends the run before its reminder
    assert [(i.key, i.element) for i in state.journeys["back-in-stock"].waiting] == [
        ("boots", "wait")]
