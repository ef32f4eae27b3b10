"""Journey controls end to end on embedded AWS and the simulated clock (issue 14): re-entry
rules, goals, pause and resume, holdouts. Events go to EventBridge, the stack's functions run,
waits follow the simulated clock; what a user cares about is read back: the e-mails SES received,
the message jobs, where customers stand, and the controls' counts the statistics read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialogue.engine import controls
from dialogue.engine.catalog import Catalog
from dialogue.local import readback
from dialogue.local.simulate import effects
from dialogue.model.activity import Activity
from jsonschema import Draft202012Validator

from tests.e2e.conftest import ROOT
from tests.e2e.test_time import World, local, orders, registers, sent, subjects


def counts(world: World, activity: str) -> dict[str, int]:
    return {k: n for k, n in readback.counters(world.aws).get(activity, {}).items()
            if k.startswith("@") and not k.startswith("@exit:")}  # runs' ends: test_stats.py


def counted_rows(world: World) -> list[dict[str, Any]]:
    """The `dialogue simulate` rows of the controls' counts, checked against their schema."""
    schema = json.loads((ROOT / "docs/schema/simulate-row.schema.json").read_text())
    rows = effects(world.aws)
    for row in rows:
        assert list(Draft202012Validator(schema).iter_errors(row)) == [], row
    return [r for r in rows if r["effect"] == "counted"
            and not r["element"].startswith("@exit:")]  # runs' ends: test_stats.py


THANKS = {
    "id": "thanks", "name": "A thank-you per order, at most twice and once a day",
    "repeatable": True, "max_entries": 2, "min_interval": {"unit": "days", "amount": 1},
    "elements": [
        {"id": "ordered", "type": "places_order", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True}]}


def test_reentry_rules_cap_entries_per_customer_and_space_them(world: World):
    world.load([THANKS])
    world.run([registers("ada", "2027-01-04T08:00:00Z"),
               orders("ada", "2027-01-04T10:00:00Z"),     # entry 1
               orders("ada", "2027-01-04T15:00:00Z"),     # within a day of it: refused
               orders("ada", "2027-01-05T10:30:00Z"),     # entry 2
               orders("ada", "2027-01-07T10:00:00Z")],    # the third: refused
              datetime(2027, 1, 4, tzinfo=UTC), 4)

    assert sent(world.jobs(), "ada", "ski-sale") == ["01-04 11:00", "01-05 11:30"]
    assert subjects(world.mails(), "ada") == ["ski-sale", "ski-sale"]
    assert counts(world, "thanks") == {"@not_entered:min_interval": 1,
                                       "@not_entered:max_entries": 1}
    assert {(r["element"], r["count"], r["reason"]) for r in counted_rows(world)} == {
        ("@not_entered:min_interval", 1, "not entered: min interval"),
        ("@not_entered:max_entries", 1, "not entered: max entries")}


NURTURE = {
    "id": "nurture", "name": "Welcome, and a reminder after two days unless they order",
    "goals": [{"event": "OrderPlaced"}],
    "elements": [
        {"id": "registered", "type": "registers", "next": "hello"},
        {"id": "hello", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True, "next": "wait"},
        {"id": "wait", "type": "wait", "unit": "days", "amount": 2, "next": "reminder"},
        {"id": "reminder", "type": "send_message", "channel": "email",
         "template": "red-label-reminder", "send_immediately": True}]}


def test_a_goal_ends_the_run_wherever_the_customer_waits_and_is_counted(world: World):
    world.load([NURTURE])
    world.run([registers("bea", "2027-01-04T10:00:00Z"),
               orders("bea", "2027-01-05T10:00:00Z"),          # the goal, while waiting
               registers("cid", "2027-01-04T10:00:00Z")],      # never orders
              datetime(2027, 1, 4, tzinfo=UTC), 4)

    assert subjects(world.mails(), "bea") == ["welcome"]  # no reminder after the goal
    assert subjects(world.mails(), "cid") == ["red-label-reminder", "welcome"]
    assert world.customer("bea").journeys["nurture"].waiting == []
    per = readback.counters(world.aws)["nurture"]
    assert per["@goal"] == 1 and per["registered"] == 2
    activity = Activity.model_validate({"schema_version": 1, **NURTURE})
    assert controls.conversion(per, activity) == {"treated": 0.5, "holdout": None}
    assert [(r["element"], r["count"], r["reason"]) for r in counted_rows(world)] == [
        ("@goal", 1, "reached goal")]


FOLLOW_UP = {
    "id": "follow-up", "name": "A mail a day after registering", "on_resume": "at_once",
    "elements": [
        {"id": "registered", "type": "registers", "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 1, "unit": "days", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True}]}


def test_a_paused_activity_holds_its_customers_and_lets_them_go_on_when_resumed(world: World):
    world.load([FOLLOW_UP])
    world.run([registers("dan", "2027-01-04T10:00:00Z")], datetime(2027, 1, 4, tzinfo=UTC), 1)
    world.load([{**FOLLOW_UP, "state": "paused"}])
    # Dan's wait ends on the 5th at 11:00 Paris; Eve registers while paused.
    world.run([registers("eve", "2027-01-05T09:00:00Z")], datetime(2027, 1, 5, tzinfo=UTC), 2)

    assert world.jobs() == [] and world.mails() == []
    [held] = world.customer("dan").journeys["follow-up"].waiting
    assert (held.element, held.held) == ("wait", True)  # kept its place
    assert "follow-up" not in world.customer("eve").journeys  # nobody entered
    assert counts(world, "follow-up") == {"@paused": 1}

    world.load([FOLLOW_UP])  # resumed on the 7th at midnight UTC
    world.run([], datetime(2027, 1, 7, tzinfo=UTC), 1)

    [job] = world.jobs("dan")
    assert local(job["sent_at"]) <= "01-07 02:00"  # within the hour of the resume
    assert subjects(world.mails(), "dan") == ["ski-sale"]
    assert world.customer("dan").journeys["follow-up"].waiting == []


def test_a_holdout_enters_but_gets_nothing_and_its_conversion_is_counted_apart(world: World):
    activity = {**NURTURE, "id": "held-nurture", "holdout": {"percent": 50}}
    model = Activity.model_validate({"schema_version": 1, **activity})
    names = [f"cust{n}" for n in range(12)]
    held = [n for n in names if controls.in_holdout(model, f"customer:{n}")]
    assert 0 < len(held) < len(names)
    world.load([activity])
    world.run([*(registers(n, "2027-01-04T10:00:00Z") for n in names),
               *(orders(n, "2027-01-05T10:00:00Z") for n in names[:6])],
              datetime(2027, 1, 4, tzinfo=UTC), 4)

    for name in names:
        got = subjects(world.mails(), name)
        if name in held:
            assert got == [] and world.jobs(name) == [], name
        else:
            assert got == (["welcome"] if name in names[:6] else
                           ["red-label-reminder", "welcome"]), name
    per = readback.counters(world.aws)["held-nurture"]
    assert per["registered"] == len(names) and per["@holdout"] == len(held)
    assert per.get("hello", 0) == len(names) - len(held)  # elements count the treated only
    converted_held = len([n for n in held if n in names[:6]])
    assert per.get("@holdout_goal", 0) == converted_held
    assert per.get("@goal", 0) == 6 - converted_held
    assert Catalog([model]).get("held-nurture") is not None


def welcome_at_once(ident: str, then: str) -> dict[str, Any]:
    return {"id": ident, "name": f"Welcome at once, quiet hours ({then})",
            "quiet_hours": {"start": "21:00", "end": "08:00", "then": then},
            "elements": [
                {"id": "registered", "type": "registers", "next": "mail"},
                {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
                 "send_immediately": True}]}


def test_quiet_hours_hold_a_message_until_morning_where_the_customer_lives(world: World):
    world.load([welcome_at_once("welcome-hold", "hold")])
    # 10:00 UTC: 05:00 in New York, 11:00 in Paris (the shop's zone).
    world.run([registers("finn", "2027-01-04T10:00:00Z", time_zone="America/New_York"),
               registers("gus", "2027-01-04T10:00:00Z")],
              datetime(2027, 1, 4, tzinfo=UTC), 1)

    [finn] = world.jobs("finn")
    assert (finn["status"], finn["sent_at"][:16]) == ("sent", "2027-01-04T13:00")  # 08:00 NY
    [gus] = world.jobs("gus")
    assert gus["status"] == "sent" and local(gus["sent_at"]) <= "01-04 11:15"
    assert subjects(world.mails(), "finn") == ["welcome"]


def test_quiet_hours_skip_a_message_due_at_night_and_say_why(world: World):
    world.load([welcome_at_once("welcome-skip", "skip")])
    world.run([registers("hal", "2027-01-04T21:30:00Z"),    # 22:30 in Paris
               registers("ivy", "2027-01-04T12:00:00Z")],   # 13:00 in Paris
              datetime(2027, 1, 4, tzinfo=UTC), 2)

    [hal] = world.jobs("hal")
    assert hal["status"] == "suppressed"
    assert hal["reason"] == "skipped: quiet hours 21:00-08:00 in Europe/Paris"
    assert subjects(world.mails(), "hal") == [] and subjects(world.mails(), "ivy") == ["welcome"]


def on_order(ident: str, template: str, **props: Any) -> dict[str, Any]:
    return {"id": ident, "name": f"On every order: {template}", "repeatable": True, **props,
            "elements": [
                {"id": "ordered", "type": "places_order", "next": "mail"},
                {"id": "mail", "type": "send_message", "channel": "email", "template": template,
                 "send_immediately": True}]}


def test_frequency_caps_across_activities_hold_or_skip_and_spare_exempt_ones(world: World):
    cap = {"limits": [{"messages": 1, "per": {"unit": "days", "amount": 1}}]}
    world.load([on_order("a-receipt", "welcome", cap_exempt=True),
                on_order("b-thanks", "ski-sale", frequency_cap=cap),
                on_order("c-cross-sell", "red-label-sale", frequency_cap={**cap, "then": "hold"}),
                on_order("d-survey", "red-label-reminder", frequency_cap=cap)])
    world.run([registers("jo", "2027-01-04T08:00:00Z"), orders("jo", "2027-01-04T10:00:00Z")],
              datetime(2027, 1, 4, tzinfo=UTC), 3)

    jobs = {j["activity_id"]: j for j in world.jobs("jo")}
    assert sent(world.jobs(), "jo", "welcome") == ["01-04 11:00"]     # exempt
    assert sent(world.jobs(), "jo", "ski-sale") == ["01-04 11:00"]    # the first one capped
    # Held a day by the cap of 1 a day, then sent; the reason stays on the job.
    assert sent(world.jobs(), "jo", "red-label-sale") == ["01-05 11:00"]
    assert jobs["c-cross-sell"]["reason"].startswith("held: capped by 1 per 1 days, release at")
    assert (jobs["d-survey"]["status"], jobs["d-survey"]["reason"]) == (
        "suppressed", "skipped: capped by 1 per 1 days")
    assert subjects(world.mails(), "jo") == ["red-label-sale", "ski-sale", "welcome"]
    assert counts(world, "c-cross-sell") == {"@capped:1 per 1 days": 1}
    assert counts(world, "d-survey") == {"@capped:1 per 1 days": 1}
    assert ("@capped:1 per 1 days", "capped: 1 per 1 days") in {
        (r["element"], r["reason"]) for r in counted_rows(world)}


LIVE = {
    "id": "live", "name": "Welcome, a wait, a wish or a reminder", "elements": [
        {"id": "registered", "type": "registers", "next": "hello"},
        {"id": "hello", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True, "next": "wait"},
        {"id": "wait", "type": "wait", "unit": "days", "amount": 2, "next": "wish"},
        {"id": "wish", "type": "wait_for_event", "event": "Wished", "next": "reminder",
         "timeout": {"unit": "days", "amount": 3, "next": "reminder"}},
        {"id": "reminder", "type": "send_message", "channel": "email",
         "template": "red-label-reminder", "send_immediately": True}]}
EDITED = {**LIVE, "elements": [  # the wish step is gone; the wait now lasts a day
    *LIVE["elements"][:2], {**LIVE["elements"][2], "amount": 1, "next": "reminder"},
    LIVE["elements"][4]]}


def test_an_edit_while_customers_wait_keeps_their_places_and_ends_the_removed_step_counted(
        world: World):
    world.load([LIVE])
    world.run([registers("lea", "2027-01-01T10:00:00Z")],  # at 'wish' from the 3rd
              datetime(2027, 1, 1, tzinfo=UTC), 3)
    world.run([registers("kim", "2027-01-04T10:00:00Z")],  # at 'wait' when it is edited
              datetime(2027, 1, 4, tzinfo=UTC), 1)
    assert [i.element for i in world.customer("lea").journeys["live"].waiting] == ["wish"]
    assert [i.element for i in world.customer("kim").journeys["live"].waiting] == ["wait"]
    v1 = Activity.model_validate({"schema_version": 1, "time_zone": "Europe/Paris", **LIVE})

    world.load([EDITED])
    world.run([], datetime(2027, 1, 5, tzinfo=UTC), 3)

    # Kim kept her place: her wait ends when first set (2 days), then the edited path.
    assert sent(world.jobs(), "kim", "red-label-reminder") == ["01-06 11:00"]
    assert subjects(world.mails(), "kim") == ["red-label-reminder", "welcome"]  # hello once
    assert world.customer("kim").journeys["live"].version == v1.version
    # Lea waited at the removed step: her run ended, counted, without a message.
    assert subjects(world.mails(), "lea") == ["welcome"]
    assert world.customer("lea").journeys["live"].waiting == []
    assert counts(world, "live") == {"@ended:element_removed": 1}


ORDER_FOLLOW_UP = {  # a template of this test: names the run's order
    "schema_version": 1, "id": "order-follow-up", "channel": "email",
    "subject": "How is your order {{ run.key }}?",
    "text": "Hi {{ customer.first_name }}, your order {{ run.key }} should be with you.\n"
            "Unsubscribe: {{ unsubscribe_url }}\n"}
PER_ORDER = {
    "id": "per-order", "name": "Two days after each order, a word about that order",
    "repeatable": True, "key": "order_id", "goals": [{"event": "OrderReturned"}],
    "elements": [
        {"id": "ordered", "type": "places_order", "next": "wait"},
        {"id": "wait", "type": "wait", "unit": "days", "amount": 2, "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email",
         "template": "order-follow-up", "send_immediately": True}]}


def test_keyed_runs_one_per_order_each_with_its_own_wait_and_its_order_in_the_mail(
        world: World, tmp_path: Path):
    from tests.e2e.test_time import TEMPLATES, custom, event

    template = tmp_path / "order-follow-up.json"
    template.write_text(json.dumps(ORDER_FOLLOW_UP))
    activity = tmp_path / "per-order.json"
    activity.write_text(json.dumps({"schema_version": 1, "time_zone": "Europe/Paris",
                                    **PER_ORDER}))
    world.aws.upload_catalog([activity], [], [*TEMPLATES, template])

    def order(n: str, at: str) -> dict[str, Any]:
        return event("OrderPlaced", "max", at, order_id=n, total="30",
                     lines=[{"product_id": "p", "unit_price": "30"}])

    world.run([registers("max", "2027-01-04T08:00:00Z"),
               order("1001", "2027-01-04T10:00:00Z"), order("1002", "2027-01-05T10:00:00Z"),
               order("1003", "2027-01-05T11:00:00Z"),
               custom("max", "2027-01-06T09:00:00Z", "OrderReturned", order_id="1003")],
              datetime(2027, 1, 4, tzinfo=UTC), 5)

    mails = sorted((subject, local(j["sent_at"])) for (_, subject, _), j in zip(
        world.mails(), sorted(world.jobs("max"), key=lambda j: j["sent_at"]), strict=True))
    assert mails == [("How is your order 1001?", "01-06 11:00"),
                     ("How is your order 1002?", "01-07 11:00")]  # 1003 returned: its goal
    assert readback.counters(world.aws)["per-order"]["@goal"] == 1
    assert world.customer("max").journeys["per-order"].entries == 3


FALLBACK = {
    "id": "fallback", "name": "A mail; opened within 2 days: a coupon; else an SMS",
    "elements": [
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True, "next": "opened"},
        {"id": "opened", "type": "message_outcome", "message": "mail", "outcome": "opened",
         "next": "coupon", "timeout": {"unit": "days", "amount": 2, "next": "sms"}},
        {"id": "coupon", "type": "issue_coupon", "promotion": "OPENED-5"},
        {"id": "sms", "type": "send_message", "channel": "sms", "template": "weekend-sale",
         "send_immediately": True}]}


def ses_opened(job: dict[str, Any], at: str) -> dict[str, Any]:
    """SES's `Email Opened` for the mail of `job`, on the default bus, with the tags
    send_message gave the mail (`delivery.tracking.message_tags`)."""
    from dialogue.delivery.tracking import message_tags
    from dialogue.model.effects import MessageQueued

    payload = {k: v for k, v in job.items() if k not in ("status", "reason", "sent_at")}
    tags = {k: [v] for k, v in message_tags(MessageQueued.model_validate(payload)).items()}
    detail = {"eventType": "Open", "mail": {"timestamp": at, "messageId": "m-1",
                                            "source": "news@shop.example",
                                            "destination": ["x@example.com"], "tags": tags},
              "open": {"timestamp": at, "ipAddress": "192.0.2.1", "userAgent": "Mail"}}
    return {"Source": "aws.ses", "DetailType": "Email Opened", "Detail": json.dumps(detail)}


def test_no_open_within_two_days_falls_back_to_sms_and_an_open_takes_the_other_path(
        world: World):
    world.load([FALLBACK])
    world.run([registers("nia", "2027-01-04T10:00:00Z", sms=True),
               registers("ole", "2027-01-04T10:00:00Z", sms=True)],
              datetime(2027, 1, 4, tzinfo=UTC), 1)
    [mail] = world.jobs("nia")
    world.at(datetime(2027, 1, 5, 9, tzinfo=UTC))
    result = world.aws.client("events").put_events(
        Entries=[ses_opened(mail, "2027-01-05T09:00:00Z")])
    assert result["FailedEntryCount"] == 0
    world.settle()
    world.run([], datetime(2027, 1, 5, 10, tzinfo=UTC), 3)

    assert [c["promotion"] for c in world.coupons("nia")] == ["OPENED-5"]
    assert [j["element_id"] for j in world.jobs("nia")] == ["mail"]  # no SMS after the open
    assert world.coupons("ole") == []
    assert [(j["element_id"], j["status"], local(j["sent_at"])) for j in world.jobs("ole")] == [
        ("mail", "sent", "01-04 11:00"), ("sms", "sent", "01-06 11:00")]
    assert len(world.sms()) == 1


def test_a_rate_limit_spreads_a_large_send_over_the_release_runs_and_drops_nothing(
        world: World):
    world.load([{**welcome_at_once("welcome-slowly", "hold"), "quiet_hours": None,
                 "rate_limit": {"messages": 8, "per": "hour"}}])  # 2 per 15-minute run
    names = [f"new{n}" for n in range(6)]
    world.run([registers(n, "2027-01-04T10:00:00Z") for n in names],
              datetime(2027, 1, 4, tzinfo=UTC), 1)

    times = sorted(local(j["sent_at"]) for j in world.jobs() if j["status"] == "sent")
    assert times == ["01-04 11:00", "01-04 11:00", "01-04 11:15", "01-04 11:15",
                     "01-04 11:30", "01-04 11:30"]
    assert sorted(to for to, _, _ in world.mails()) == [f"{n}@example.com" for n in names]
    reasons = sorted(j["reason"].endswith("or later") for j in world.jobs())
    assert all(j["reason"].startswith("held: rate limit 8 per hour, release at 2027")
               for j in world.jobs())
    assert reasons == [False] * 4 + [True] * 2  # 4 parked for a later run, with when
