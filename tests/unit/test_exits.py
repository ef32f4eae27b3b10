"""How a customer's run ends, counted once with its reason (issue 13's exits per activity), and
the reasons the statistics group held and skipped messages by (issue 14)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dialogue.delivery.jobs import control_reason
from dialogue.engine import controls
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import Decision, decide
from dialogue.engine.forget import forget
from dialogue.engine.identity import hold
from dialogue.engine.timers import TimerRef
from dialogue.engine.wake import wake
from dialogue.model.customer import CustomerState
from dialogue.model.effects import ElementReached, WaitStarted

from tests.unit.conftest import NOW, activity, event

DAY = timedelta(days=1)


def ends(decision: Decision) -> list[str]:
    return [e.element_id for e in decision.effects
            if isinstance(e, ElementReached) and e.element_id in controls.EXITS]


def two_paths(**props: Any) -> Any:
    """On registration, both paths: a wait of one day and a wait of two, each then a mail."""
    return activity(
        {"id": "registered", "type": "registers", "next": "both"},
        {"id": "both", "type": "branch", "mode": "all", "paths": [
            {"name": "short", "conditions": [], "next": "w1"},
            {"name": "long", "conditions": [], "next": "w2"}]},
        {"id": "w1", "type": "wait", "amount": 1, "unit": "days", "next": "m1"},
        {"id": "w2", "type": "wait", "amount": 2, "unit": "days", "next": "m2"},
        {"id": "m1", "type": "send_message", "channel": "email", "template": "welcome"},
        {"id": "m2", "type": "send_message", "channel": "email", "template": "welcome"},
        **props)


def timer(decision: Decision, element: str) -> TimerRef:
    wait = next(e for e in decision.effects
                if isinstance(e, WaitStarted) and e.element_id == element)
    return TimerRef.from_effect(wait)


def registered(act: Any) -> Decision:
    return decide(CustomerState(subject="customer:c1"), event("CustomerRegistered"),
                  Catalog([act]), NOW)


def test_a_run_is_completed_once_when_its_last_waiting_path_ends():
    act = two_paths()
    entered = registered(act)
    assert ends(entered) == []  # both paths wait

    first = wake(entered.state, Catalog([act]), timer(entered, "w1"), NOW + DAY)
    assert ends(first) == []  # the long path still waits
    second = wake(first.state, Catalog([act]), timer(entered, "w2"), NOW + 2 * DAY)

    assert ends(second) == ["@exit:completed"]
    assert second.state.journeys["act"].waiting == []


def test_a_run_with_no_wait_ends_in_the_decision_that_started_it():
    act = activity({"id": "registered", "type": "registers", "next": "mail"},
                   {"id": "mail", "type": "send_message", "channel": "email",
                    "template": "welcome"})
    assert ends(registered(act)) == ["@exit:completed"]


def test_runs_waiting_when_the_activity_is_deactivated_end_counted_as_closed():
    act = two_paths()
    entered = registered(act)
    stopped = act.model_copy(update={"state": "inactive"})

    first = wake(entered.state, Catalog([stopped]), timer(entered, "w1"), NOW + DAY)
    assert ends(first) == []  # the run still waits on its other path
    second = wake(first.state, Catalog([stopped]), timer(entered, "w2"), NOW + 2 * DAY)
    assert ends(second) == [controls.CLOSED]


def test_deleting_a_customer_ends_each_of_their_waiting_runs_counted():
    act = two_paths(repeatable=True)
    state = registered(act).state
    later = NOW + timedelta(hours=1)
    again = decide(state, event("CustomerRegistered", occurred_at=later), Catalog([act]), later)
    assert {i.entry for i in again.state.journeys["act"].waiting} == {1, 2}

    gone = forget(again.state, "del-1", NOW + DAY / 2, NOW + DAY / 2)

    assert [(e.activity_id, e.entry, e.element_id) for e in gone.effects
            if isinstance(e, ElementReached)] == [("act", 1, controls.DELETED),
                                                   ("act", 2, controls.DELETED)]


def test_a_guests_held_message_is_counted_for_the_statistics():
    act = activity({"id": "searched", "type": "searches", "keyword": {"rule": "any"},
                    "next": "mail"},
                   {"id": "mail", "type": "send_message", "channel": "email",
                    "template": "welcome"})
    search = event("SearchPerformed", query="boots", customer_id=None, personalization_id="p1")
    decision = decide(CustomerState(subject="guest:p1"), search, Catalog([act]), NOW)

    assert hold(decision) == {"GuestMessagesHeld": 1}
    assert [e.element_id for e in decision.effects if isinstance(e, ElementReached)
            and e.element_id.startswith("@held")] == [controls.GUEST_HELD]


def test_a_controls_reason_is_grouped_without_its_release_time():
    assert control_reason("held: quiet hours 21:00-08:00 in Europe/Paris, release at "
                          "2027-01-05T07:00:00+00:00") == "quiet hours 21:00-08:00 in Europe/Paris"
    assert control_reason("skipped: capped by 1 per 2 days") == "capped by 1 per 2 days"
    assert control_reason("held: rate limit 10 per hour, release at 2027-01-05T07:15:00+00:00"
                          ) == "rate limit 10 per hour"
    assert control_reason("release at 2027-01-05T08:00:00+00:00") is None  # the send time
    assert control_reason("no email marketing consent") is None
