"""Quiet hours and blackout days: held until the window opens or skipped, in the customer's time
zone (else the shop's), across daylight saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue.delivery.plan import Email, Schedule, Suppress, plan
from dialogue.delivery.quiet import quiet_until
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import decide
from dialogue.model.controls import QuietHours
from dialogue.model.effects import MessageQueued
from dialogue.model.events import parse_event

from tests.unit.conftest import activity, envelope, event
from tests.unit.test_delivery import SETTINGS, customer, job, mail_template

PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
NIGHT = QuietHours(start="21:00", end="08:00")


def at(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


@pytest.mark.parametrize(("now", "opens"), [
    (at(PARIS, 2027, 1, 5, 12, 0), None),                         # daytime: goes now
    (at(PARIS, 2027, 1, 5, 20, 59), None),
    (at(PARIS, 2027, 1, 5, 21, 0), at(PARIS, 2027, 1, 6, 8, 0)),  # evening: next morning
    (at(PARIS, 2027, 1, 6, 3, 0), at(PARIS, 2027, 1, 6, 8, 0)),   # the small hours
    (at(PARIS, 2027, 1, 6, 8, 0), None),                          # the window's first minute
])
def test_a_window_across_midnight(now: datetime, opens: datetime | None):
    assert quiet_until(NIGHT, now, PARIS) == opens


def test_the_window_opens_at_local_time_across_the_spring_and_autumn_changes():
    # 28 March 2027: Paris goes from UTC+1 to UTC+2 at 02:00. 08:00 is 06:00 UTC that day.
    assert quiet_until(NIGHT, at(PARIS, 2027, 3, 27, 23, 0), PARIS) == datetime(
        2027, 3, 28, 6, 0, tzinfo=UTC)
    # 31 October 2027: back to UTC+1. 08:00 is 07:00 UTC that day.
    assert quiet_until(NIGHT, at(PARIS, 2027, 10, 30, 23, 0), PARIS) == datetime(
        2027, 10, 31, 7, 0, tzinfo=UTC)
    # A window opening at a skipped time (02:30 on the spring change) opens after the gap.
    early = QuietHours(start="22:00", end="02:30")
    opened = quiet_until(early, at(PARIS, 2027, 3, 27, 23, 0), PARIS)
    assert opened == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST, the gap skipped
    assert quiet_until(early, opened, PARIS) is None


def test_blackout_days_hold_until_the_first_open_hour_after_them():
    window = QuietHours(start="21:00", end="08:00", blackout={
        "name": "Christmas", "dates": ["2027-12-24", "2027-12-25"]})
    assert quiet_until(window, at(PARIS, 2027, 12, 24, 10, 0), PARIS) == at(
        PARIS, 2027, 12, 26, 8, 0)
    only_days = QuietHours(blackout={"name": "Christmas", "dates": ["2027-12-25"]})
    assert quiet_until(only_days, at(PARIS, 2027, 12, 25, 10, 0), PARIS) == at(
        PARIS, 2027, 12, 26, 0, 0)
    assert quiet_until(only_days, at(PARIS, 2027, 12, 26, 3, 0), PARIS) is None


@pytest.mark.parametrize(("window", "error"), [
    ({"start": "21:00"}, "both"),
    ({"start": "21:00", "end": "21:00"}, "same time"),
    ({"start": "25:00", "end": "08:00"}, "pattern"),
    ({"then": "skip"}, "blackout"),
])
def test_bad_quiet_hours_are_refused(window: dict[str, Any], error: str):
    with pytest.raises(ValueError, match=error):
        QuietHours.model_validate(window)


def quiet_job(window: QuietHours | None, **kw: Any) -> MessageQueued:
    return job(**kw).model_copy(update={"quiet_hours": window})


def test_a_message_due_at_night_where_the_customer_lives_is_held_until_their_morning():
    # 14:00 in Paris is 08:00 in New York: a New Yorker's 03:00 message waits for 08:00 there.
    now = at(NEW_YORK, 2027, 1, 5, 3, 0)
    new_yorker = customer(time_zone="America/New_York")
    decided = plan(quiet_job(NIGHT), new_yorker, False, mail_template(), now, SETTINGS)
    assert isinstance(decided, Schedule)
    assert decided.release_at == at(NEW_YORK, 2027, 1, 5, 8, 0)
    assert decided.reason is not None and "America/New_York" in decided.reason
    # The same instant is 09:00 in Paris, the shop's zone: a customer without one gets it now.
    assert isinstance(plan(quiet_job(NIGHT), customer(), False, mail_template(), now,
                           SETTINGS), Email)


def test_skip_does_not_send_and_says_why():
    skip = NIGHT.model_copy(update={"then": "skip"})
    decided = plan(quiet_job(skip), customer(), False, mail_template(),
                   at(PARIS, 2027, 1, 5, 23, 0), SETTINGS)
    assert isinstance(decided, Suppress) and decided.kind == "quiet_hours"
    assert decided.reason == "skipped: quiet hours 21:00-08:00 in Europe/Paris"


def test_the_shop_default_applies_to_activities_without_their_own():
    shop = type(SETTINGS)(**{**SETTINGS.__dict__, "quiet_hours": NIGHT})
    night = at(PARIS, 2027, 1, 5, 23, 0)
    assert isinstance(plan(quiet_job(None), customer(), False, mail_template(), night, shop),
                      Schedule)
    own = QuietHours(start="23:30", end="06:00")  # the activity's own wins
    assert isinstance(plan(quiet_job(own), customer(), False, mail_template(), night, shop),
                      Email)


def test_the_engine_puts_the_activity_s_quiet_hours_on_the_job():
    act = activity({"id": "t", "type": "registers", "next": "m"},
                   {"id": "m", "type": "send_message", "channel": "email",
                    "template": "welcome"}, quiet_hours={"start": "21:00", "end": "08:00"})
    ev = event("CustomerRegistered")
    decision = decide(customer(), ev, Catalog([act]), ev.detail.occurred_at)
    [message] = [e for e in decision.effects if isinstance(e, MessageQueued)]
    assert message.quiet_hours == NIGHT


def test_a_profile_time_zone_must_be_a_known_zone():
    ok = parse_event(envelope("CustomerUpdated", profile={"time_zone": "America/New_York"}))
    assert ok.detail.profile.time_zone == "America/New_York"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="time zone"):
        parse_event(envelope("CustomerUpdated", profile={"time_zone": "Mars/Olympus"}))


# --- the shop's default, a stack parameter -------------------------------------------------
SEND_ENV = {"TABLE_NAME": "t", "CUSTOMERS_TABLE": "c", "ACTIVITIES_BUCKET": "b",
            "MESSAGES_DLQ_URL": "q", "SENDER": "news@shop.example", "EVENT_BUS_NAME": "bus",
            "SHOP_NAME": "Shop", "SHOP_URL": "https://shop.example",
            "UNSUBSCRIBE_URL": "https://shop.example/u", "UNSUBSCRIBE_SECRET_ARN": "arn",
            "MAX_SEND_RATE": "14"}


def test_send_settings_read_the_shop_quiet_hours_and_blackout_dates():
    from dialogue.settings import SendSettings

    read = SendSettings.from_env({**SEND_ENV, "QUIET_HOURS": "21:00-08:00",
                                  "BLACKOUT_DATES": "2027-12-24,2027-12-25"}).quiet_hours
    assert read is not None and (read.start, read.end, read.then) == ("21:00", "08:00", "hold")
    assert read.blackout is not None and [str(d) for d in read.blackout.dates] == [
        "2027-12-24", "2027-12-25"]
    assert SendSettings.from_env({**SEND_ENV, "QUIET_HOURS": "", "BLACKOUT_DATES": ""}
                                 ).quiet_hours is None
    only_days = SendSettings.from_env({**SEND_ENV, "BLACKOUT_DATES": "2027-12-25"}).quiet_hours
    assert only_days is not None and only_days.start is None


@pytest.mark.parametrize(("window", "days", "error"), [
    ("21:00", "", "QuietHours '21:00' is not HH:MM-HH:MM"),
    ("09:00-09:00", "", "'start' and 'end' are the same time"),
    ("25:00-08:00", "", "start: String should match pattern"),
    ("", "2027-02-30", "BlackoutDates '2027-02-30': blackout.dates.0"),
])
def test_a_bad_shop_default_is_refused_with_the_reason(window: str, days: str, error: str):
    from dialogue.settings import BadSetting, SendSettings

    with pytest.raises(BadSetting) as e:
        SendSettings.from_env({**SEND_ENV, "QUIET_HOURS": window, "BLACKOUT_DATES": days})
    assert error in str(e.value)
