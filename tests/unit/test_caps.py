"""Frequency caps across activities, in the pure engine and at send time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from dialogue.delivery.plan import Schedule, Suppress, plan
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import Decision, decide
from dialogue.model.activity import Activity
from dialogue.model.customer import CustomerState
from dialogue.model.effects import ElementReached, MessageQueued
from dialogue.model.events import ShopEvent
from pydantic import ValidationError

from tests.unit.conftest import NOW, activity, event
from tests.unit.test_delivery import SETTINGS, customer, mail_template

DAY = timedelta(days=1)
ONE_A_DAY = {"messages": 1, "per": {"unit": "days", "amount": 1}}
THREE_A_WEEK = {"messages": 3, "per": {"unit": "weeks", "amount": 1}}


def on(detail_type: str, ident: str, channel: str = "email", **props: Any) -> Activity:
    """Every `detail_type` event: a message at once."""
    template = "welcome" if channel == "email" else "hello"
    return activity({"id": "on", "type": "wait_for_event", "event": detail_type, "next": "m"},
                    {"id": "m", "type": "send_message", "channel": channel,
                     "template": template, "send_immediately": True, "next": "after"},
                    {"id": "after", "type": "issue_coupon", "promotion": "P"},
                    **{"id": ident, "repeatable": True, **props})


def visit(at=NOW, n: int = 0) -> ShopEvent:
    return event("CustomEvent", name="Visited", parameters={}, occurred_at=at,
                 event_id=f"v-{n}-{at.isoformat()}")


def play(acts: list[Activity], events: list[ShopEvent],
         state: CustomerState | None = None) -> list[Decision]:
    catalog, state = Catalog(acts), state or CustomerState(subject="customer:c1")
    out = []
    for ev in events:
        decision = decide(state, ev, catalog, ev.detail.occurred_at)
        state = decision.state
        out.append(decision)
    return out


def messages(d: Decision) -> list[MessageQueued]:
    """The messages that go (now or later): skipped ones are queued to be marked suppressed."""
    return [e for e in d.effects if isinstance(e, MessageQueued)
            and not (e.capped and e.not_before is None)]


def skipped(d: Decision) -> list[MessageQueued]:
    return [e for e in d.effects if isinstance(e, MessageQueued) and e.capped
            and e.not_before is None]


def capped(d: Decision) -> list[tuple[str, str]]:
    return [(e.activity_id, e.element_id) for e in d.effects
            if isinstance(e, ElementReached) and e.element_id.startswith("@capped")]


def test_two_activities_sending_at_the_same_instant_never_both_pass_a_cap_of_1():
    cap = {"limits": [ONE_A_DAY]}
    acts = [on("Visited", "a", frequency_cap=cap), on("Visited", "b", frequency_cap=cap)]

    [decision] = play(acts, [visit()])

    assert [m.activity_id for m in messages(decision)] == ["a"]
    assert capped(decision) == [("b", "@capped:1 per 1 days")]
    [b] = skipped(decision)
    suppressed = plan(b, customer(), False, mail_template(), NOW, SETTINGS)
    assert isinstance(suppressed, Suppress) and suppressed.kind == "capped"
    assert suppressed.reason == "skipped: capped by 1 per 1 days"
    # Skipped, the customer still goes on in the dialogue: b's coupon is issued.
    assert {e.activity_id for e in decision.effects if e.element_id == "after"} == {"a", "b"}


def test_several_windows_at_once_each_caps_with_its_own_name():
    act = on("Visited", "daily", frequency_cap={"limits": [ONE_A_DAY, THREE_A_WEEK]})
    at = [NOW, NOW + timedelta(hours=1), NOW + DAY, NOW + 2 * DAY, NOW + 3 * DAY]
    decisions = play([act], [visit(t, n) for n, t in enumerate(at)])

    assert [len(messages(d)) for d in decisions] == [1, 0, 1, 1, 0]
    assert [c for d in decisions for _, c in capped(d)] == [
        "@capped:1 per 1 days", "@capped:3 per 1 weeks"]


def test_a_held_message_waits_until_the_cap_allows_it_and_says_why():
    cap = {"limits": [ONE_A_DAY], "then": "hold"}
    acts = [on("Visited", "a", frequency_cap=cap), on("Visited", "b", frequency_cap=cap)]

    [decision] = play(acts, [visit()])

    first, second = messages(decision)
    assert first.not_before is None and second.not_before == NOW + DAY
    assert capped(decision) == [("b", "@capped:1 per 1 days")]
    held = plan(second, customer(), False, mail_template(), NOW, SETTINGS)
    assert isinstance(held, Schedule) and held.release_at == NOW + DAY
    assert held.reason == f"held: capped by 1 per 1 days, release at {(NOW + DAY).isoformat()}"
    # The held message is noted for its release time: a third one waits a day more.
    [third] = play(acts[:1], [visit(NOW + timedelta(hours=1), 3)], decision.state)
    assert [m.not_before for m in messages(third)] == [NOW + 2 * DAY]


def test_a_channel_cap_counts_and_caps_that_channel_only():
    sms_cap = {"limits": [{**ONE_A_DAY, "channel": "sms"}]}
    acts = [on("Visited", "mail", frequency_cap=sms_cap),
            on("Visited", "text", "sms", frequency_cap=sms_cap),
            on("Visited", "text2", "sms", frequency_cap=sms_cap)]

    [decision] = play(acts, [visit()])

    assert [m.activity_id for m in messages(decision)] == ["mail", "text"]
    assert capped(decision) == [("text2", "@capped:1 per 1 days (sms)")]


def test_exempt_activities_are_never_capped_and_do_not_count():
    cap = {"limits": [ONE_A_DAY]}
    acts = [on("Visited", "service", cap_exempt=True), on("Visited", "news", frequency_cap=cap),
            on("Visited", "receipt", cap_exempt=True)]

    [decision] = play(acts, [visit()])

    assert [m.activity_id for m in messages(decision)] == ["service", "news", "receipt"]
    assert decision.state.sends == {"email": [int(NOW.timestamp())]}


def test_the_send_log_is_bounded_in_time_and_count():
    act = on("Visited", "every")  # no cap of its own: its messages still count for others
    decisions = play([act], [visit(NOW + n * timedelta(hours=1), n) for n in range(150)]
                     + [visit(NOW + 60 * DAY, 999)])
    assert len(decisions[149].state.sends["email"]) == 100
    assert decisions[-1].state.sends == {"email": [int((NOW + 60 * DAY).timestamp())]}


@pytest.mark.parametrize(("props", "error"), [
    ({"cap_exempt": True, "frequency_cap": {"limits": [ONE_A_DAY]}}, "either cap_exempt"),
    ({"frequency_cap": {"limits": [{"messages": 1, "per": {"unit": "days", "amount": 40}}]}},
     "at most 31 days"),
    ({"frequency_cap": {"limits": []}}, "at least 1"),
])
def test_bad_caps_are_refused(props: dict[str, Any], error: str):
    with pytest.raises(ValidationError, match=error):
        on("Visited", "x", **props)


def test_a_message_of_an_activity_that_fails_afterwards_is_not_counted_by_the_caps():
    """The failing activity's changes are undone (`isolated`), its noted send too: the next
    activity's message passes the cap of 1."""
    from dialogue.model.activity import Wait

    broken = on("Visited", "broken")
    bad = [Wait.model_construct(id="after", type="wait", unit="days", amount=3_000_000,
                                next=None) if el.id == "after" else el
           for el in broken.elements]  # an overflowing wait after the message
    broken = broken.model_copy(update={"elements": bad})
    capped_one = on("Visited", "news", frequency_cap={"limits": [ONE_A_DAY]})

    [decision] = play([broken, capped_one], [visit()])

    assert [e.activity_id for e in decision.errors] == ["broken"]
    assert [m.activity_id for m in messages(decision)] == ["news"]
    assert decision.state.sends == {"email": [int(NOW.timestamp())]}
