"""The daily check for one customer: memberships, rule-based segments, waits and daily triggers.

Pure: (state, catalog, now, shop time zone) → decision, at most once per shop-local day. In order:
time-limited memberships that ran out are ended; rule-based segments are refreshed (so that
*customer is in segment* sees today's membership); customers waiting in the activities go on
(overdue waits whose timer was lost, later daily triggers whose condition holds today) or leave
the ones that ended; then the activities whose first element is a daily trigger are entered.
"""

from __future__ import annotations

import calendar
import weakref
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from dialogue.engine import segments as segment_rules
from dialogue.model.activity import (
    AbandonsCartTrigger,
    Activity,
    BirthdayTrigger,
    DailyTrigger,
    Element,
    InSegmentTrigger,
)
from dialogue.model.customer import (
    MAX_SEGMENT_HISTORY,
    CustomerState,
    Instance,
    Journey,
    SegmentChange,
)
from dialogue.model.effects import AnyEffect, SegmentRemoved

from . import controls
from .catalog import Catalog
from .decide import ActivityError, Decision, goals_reached, isolated, own_journey, writable
from .flow import Chance, Codes, Run, new_coupon_code, stable_chance
from .wake import closed, resume

RULE_OWNED = (segment_rules.RULE, segment_rules.EXPIRED)  # what `segments.refresh` looks after


def daily(state: CustomerState, catalog: Catalog, now: datetime, zone: ZoneInfo,
          rfm: segment_rules.RfmBoundaries | None = None, chance: Chance = stable_chance,
          codes: Codes = new_coupon_code) -> Decision:
    """One customer's daily check at `now`; `zone` is the shop's, whose day counts the runs.

    A second run on the same shop-local day is a duplicate. When nothing changes but the day,
    the decision is a duplicate too (`duplicate=True`: nothing to write), so an idle customer
    costs no write. That is safe: for them this run fired nothing, so a re-run that day can only
    fire what has become true since, which is the daily check's job anyway; whenever anything
    fires, the state is written with `last_daily` and a re-run that day changes nothing.
    """
    today = now.astimezone(zone).date()
    if state.last_daily is not None and state.last_daily >= today:  # done, or a later day is
        return Decision(state=state, duplicate=True)
    before = state
    state = writable(state)
    state.last_daily = today
    effects = _expire_memberships(state, now)
    effects += segment_rules.refresh(state, catalog, now, rfm)
    errors: list[ActivityError] = []
    effects += goals_reached(state, catalog, now, errors, f"daily:{today}")
    dropped = _journeys(state, catalog, today, now, effects, chance, codes, errors)
    for activity in _daily_entries(catalog):
        effects += isolated(state, errors, activity.id, activity.entry.id,
                            f"daily:{today}:{activity.id}",
                            partial(_enter, state, activity, today, now, chance, codes))
    changed = (bool(effects) or dropped or state.segments != before.segments
               or state.behaviour != before.behaviour)  # an abandoned cart noted by `refresh`
    if not changed:
        return Decision(state=before, duplicate=True, errors=errors)
    return Decision(state=state, effects=effects, errors=errors)


def daily_runs(state: CustomerState, catalog: Catalog, runs: list[datetime], zone: ZoneInfo,
               rfm: segment_rules.RfmBoundaries | None = None, chance: Chance = stable_chance,
               codes: Codes = new_coupon_code) -> Decision:
    """Several days' checks in order (days the schedule missed, then today), as one decision:
    each day is judged at its own instant, so a missed birthday or N-day cart still fires for
    the day it belonged to, and the customer is written once."""
    current, wrote = state, False
    effects: list[AnyEffect] = []
    for at in runs:
        decision = daily(current, catalog, at, zone, rfm, chance, codes)
        if not decision.duplicate:
            current, wrote = decision.state, True
            effects += decision.effects
    if not wrote:
        return Decision(state=state, duplicate=True)
    return Decision(state=current, effects=effects)


# How late an event may still reach on_event: EventBridge retries for a day, the events queue
# keeps a message 4 days. An event is judged at its `occurred_at`, so an order of the last
# evening still counts when it arrives days later; the file is marked inactive after that.
LATE_EVENTS = timedelta(days=5)


def expired(catalog: Catalog, now: datetime) -> list[str]:
    """Activities still marked active whose end date is over in their time zone by more than
    LATE_EVENTS: the daily check marks them inactive, so what a marketer reads says what the
    engine does. (From the end date on, nobody enters and waiting customers are let go.)"""
    return [a.id for a in catalog.activities.values()
            if a.state == "active" and a.window[1] is not None
            and now >= a.window[1] + LATE_EVENTS]


def _expire_memberships(state: CustomerState, now: datetime) -> list[AnyEffect]:
    """Memberships whose time ran out end today (rule-based ones are left to the rules)."""
    effects: list[AnyEffect] = []
    for segment, membership in list(state.segments.items()):
        if membership.until is None or membership.until > now or membership.by in RULE_OWNED:
            continue
        del state.segments[segment]
        state.segment_history.append(SegmentChange.model_construct(
            segment=segment, change="removed", at=now, by=membership.by, element=None))
        effects.append(SegmentRemoved.model_construct(
            activity_id=membership.by or "", element_id=segment, subject=state.subject,
            entry=0, at=now, segment=segment))
    del state.segment_history[:-MAX_SEGMENT_HISTORY]
    return effects


def _journeys(state: CustomerState, catalog: Catalog, today: date, now: datetime,
              effects: list[AnyEffect], chance: Chance, codes: Codes,
              errors: list[ActivityError]) -> bool:
    """Customers parked in activities go on or leave; appends to `effects`; True if any left
    without an effect. Those parked here by this very check wait for tomorrow's. One that
    fails stays parked (`isolated`)."""
    dropped: list[bool] = []
    for activity_id, journey in list(state.journeys.items()):
        if not journey.waiting:
            continue
        for instance in list(journey.waiting):
            effects += isolated(state, errors, activity_id, instance.element,
                                f"daily:{today}:{activity_id}",
                                partial(_go_on, state, catalog, activity_id, instance, today,
                                        now, chance, codes, dropped))
    return bool(dropped)


def _go_on(state: CustomerState, catalog: Catalog, activity_id: str, instance: Instance,
           today: date, now: datetime, chance: Chance, codes: Codes,
           dropped: list[bool]) -> list[AnyEffect]:
    """One parked customer: leaves, resumes or goes on; `dropped` gets True if they left."""
    activity = catalog.get(activity_id)
    if activity is None or closed(activity, now):
        journey = own_journey(state, activity_id)
        journey.waiting.remove(instance)
        dropped.append(True)
        return controls.left(activity_id, state, journey, instance.entry, now,
                             controls.GONE if activity is None else controls.CLOSED)
    if instance.element not in activity.by_id and not activity.paused:  # removed by an edit
        owned = own_journey(state, activity_id)
        owned.waiting.remove(instance)
        run = _run(state, activity, owned, instance.entry, today, now, chance, codes,
                   activity.entry, None)
        run.holdout, run.key = instance.holdout, instance.key
        controls.relocate(run, instance.element)
        return run.effects
    if instance.due_at is not None and instance.due_at <= now:
        # The safety net: a lost or late timer never strands a customer.
        found = resume(state, catalog, activity_id, instance, now, chance, codes)
        if not found:
            dropped.append(True)
        return found
    element = activity.by_id[instance.element]
    if activity.paused or _holds(element, state, activity, now) is None:
        return []
    owned = own_journey(state, activity_id)
    owned.waiting.remove(instance)
    run = _run(state, activity, owned, instance.entry, today, now, chance, codes, element, None)
    run.holdout, run.key = instance.holdout, instance.key
    run.walk(element.next)  # reaching it was counted when they parked
    return run.effects


def _enter(state: CustomerState, activity: Activity, today: date, now: datetime,
           chance: Chance, codes: Codes) -> list[AnyEffect]:
    """Entries of `activity` today: once, or (in_segment, repeatable) once per segment."""
    if not activity.is_live(now):
        return []
    current = state.journeys.get(activity.id)
    if current is not None and current.entries and not activity.repeatable:
        return []  # non-repeatable: a customer enters once, ever
    trigger = activity.entry
    found = _holds(trigger, state, activity, now, first=True)
    if found is None:
        return []
    reasons = found if activity.repeatable else found[:1]
    effects: list[AnyEffect] = []
    for reason in reasons:
        refused = controls.refused_entry(activity, state.journeys.get(activity.id), now)
        if refused is not None:
            effects.append(controls.counted(activity.id, state, 0, now,
                                            controls.NOT_ENTERED + refused))
            continue
        journey = own_journey(state, activity.id)
        journey.entries += 1
        journey.last_entered_at = now
        run = _run(state, activity, journey, journey.entries, today, now, chance, codes, trigger,
                   reason)
        run.reached(trigger)
        controls.start(run)
        run.walk(trigger.next)
        effects += run.effects
    return effects


def _holds(el: Element, state: CustomerState, activity: Activity, now: datetime,
           first: bool = False) -> list[str | None] | None:
    """Does this daily trigger fire today? None if not; otherwise what it fired for: the
    segments the customer is in (in_segment), or [None]. "once" fires on the first day only."""
    day = activity.local_day(now)
    first_day = day == activity.start_date
    match el:
        case InSegmentTrigger():
            if el.mode == "once" and not (first and first_day):
                return None
            inside: list[str | None] = [s for s in el.segments if state.in_segment(s, now)]
            return inside or None
        case AbandonsCartTrigger():
            cart = state.cart
            if cart is None or not cart.lines:
                return None
            idle = (day - cart.updated_at.astimezone(activity.zone).date()).days
            if el.mode == "daily":
                return [None] if idle == el.days else None
            ok = first and first_day and (el.min_days or 0) <= idle <= (el.max_days or 0)
            return [None] if ok else None
        case BirthdayTrigger():
            born = state.profile.birthday
            return [None] if born and is_birthday(born, day, el.days_before) else None
    return None  # an event trigger, a wait, an action: not the daily check's


def is_birthday(born: date, day: date, days_before: int = 0) -> bool:
    """Is `day` `days_before` days before a birthday? Born on 29 February: the 28th in other
    years."""
    target = date.fromordinal(day.toordinal() + days_before)
    if (born.month, born.day) == (target.month, target.day):
        return True
    return ((born.month, born.day) == (2, 29) and (target.month, target.day) == (2, 28)
            and not calendar.isleap(target.year))


def _run(state: CustomerState, activity: Activity, journey: Journey, entry: int, today: date,
         now: datetime, chance: Chance, codes: Codes, trigger: Element,
         segment: str | None) -> Run:
    """A run of the daily check: its event id and template `event` name the day and trigger."""
    event: dict[str, Any] = {"type": "daily", "date": str(today)}
    match trigger:
        case InSegmentTrigger():
            segment = segment or next((s for s in trigger.segments
                                       if state.in_segment(s, now)), None)
            event["segment"] = segment
        case AbandonsCartTrigger() if state.cart is not None:
            event["cart"] = {"cart_id": state.cart.cart_id, "value": str(state.cart.value),
                             "lines": [ln.model_dump(mode="json") for ln in state.cart.lines]}
        case BirthdayTrigger() if state.profile.birthday is not None:
            event["birthday"] = state.profile.birthday.isoformat()
    event_id = f"daily:{today}:{activity.id}:{segment or trigger.id}"
    return Run(activity, state, journey, entry, now, event_id, chance, codes, event)


_entries: weakref.WeakKeyDictionary[Catalog, list[Activity]] = weakref.WeakKeyDictionary()


def _daily_entries(catalog: Catalog) -> list[Activity]:
    """The activities whose first element is a daily trigger (cached per catalog)."""
    found = _entries.get(catalog)
    if found is None:
        found = [a for a in catalog.activities.values() if isinstance(a.entry, DailyTrigger)]
        _entries[catalog] = found
    return found
