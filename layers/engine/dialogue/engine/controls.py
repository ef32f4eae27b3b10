"""Journey controls decided from the one state read: re-entry rules, goals, holdouts, pauses.

Pure, like the rest of the engine. What a control does to a customer is counted on the
activity's counter row, beside the per-element counts, under a name no element id can take (ids
start with a letter or a digit): `@goal`, `@holdout`, `@not_entered:max_entries`, ... So the
statistics read them with the element counts, and no control costs an AWS call of its own: the
counts ride the transaction that writes the state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dialogue.model.activity import Activity, Goal
from dialogue.model.customer import CustomerState, Journey, Occurrence
from dialogue.model.effects import AnyEffect, ElementReached, WaitStarted
from dialogue.model.events import Detail

from .flow import COMPLETED, EXIT, Run, due_after, stable_chance
from .targets import holds

GOAL = "@goal"  # a run ended by a goal (treatment group)
HOLDOUT = "@holdout"  # an entry into the control group
HOLDOUT_GOAL = "@holdout_goal"  # a control-group run that met a goal
NOT_ENTERED = "@not_entered:"  # + the rule that kept a customer out: max_entries, min_interval
ENDED_REMOVED = "@ended:element_removed"  # waiting at an element an edit removed, not moved
MOVED = "@moved"  # waiting at an element an edit removed, moved on as `moved` says
PAUSED = "@paused"  # a wait that ran out while the activity was paused (it goes on on resume)
CLOSED = EXIT + "activity_closed"  # waiting when the activity was deactivated or ended
GONE = EXIT + "activity_deleted"  # waiting in an activity no longer in the catalog
DELETED = EXIT + "customer_deleted"  # waiting when the customer was deleted (`forget`)
GUEST_HELD = "@held:guest"  # a guest's message, held until a login links the browser
GUEST_DROPPED = "@skipped:guest"  # a guest's message, dropped (`"guest_messages": "drop"`)
# Every way a run ends, as the statistics name it: each run is counted under one of them once.
EXITS = {COMPLETED: "completed", GOAL: "reached goal", HOLDOUT_GOAL: "reached goal (holdout)",
         ENDED_REMOVED: "ended by an edit", CLOSED: "activity deactivated or ended",
         GONE: "activity deleted", DELETED: "customer deleted"}
# While an activity is paused, a wait that runs out is looked at again this much later: so on
# resume the customers go on within this time, at one wake-up per hour per waiting customer.
PAUSE_RECHECK = timedelta(hours=1)


def describe(name: str) -> str:
    """What a control's count says, for the statistics and `dialogue simulate`."""
    if name.startswith("@capped:"):
        return f"capped: {name.removeprefix('@capped:')}"
    if name.startswith(NOT_ENTERED):
        return f"not entered: {name.removeprefix(NOT_ENTERED).replace('_', ' ')}"
    if name in EXITS and name not in (GOAL, HOLDOUT_GOAL, ENDED_REMOVED):
        return f"exit: {EXITS[name]}"
    return {GUEST_HELD: "held: a guest's message, until a login links the browser",
            GUEST_DROPPED: "skipped: a guest's message (the activity drops them)",
            GOAL: "reached goal", HOLDOUT: "entered the holdout (no actions)",
            HOLDOUT_GOAL: "reached goal in the holdout",
            PAUSED: "wait ran out while paused (held until resumed)",
            ENDED_REMOVED: "ended: waited at an element an edit removed",
            MOVED: "moved: waited at an element an edit removed"}.get(name, name)


def conversion(per_element: dict[str, int], activity: Activity) -> dict[str, float | None]:
    """Goals reached per entry, for the customers who got the actions and for the holdout."""
    entries, held = per_element.get(activity.entry.id, 0), per_element.get(HOLDOUT, 0)
    treated = entries - held
    return {"treated": per_element.get(GOAL, 0) / treated if treated else None,
            "holdout": per_element.get(HOLDOUT_GOAL, 0) / held if held else None}


def counted(activity_id: str, state: CustomerState, entry: int, at: datetime,
            name: str) -> AnyEffect:
    """One count of a control on the activity's counter row (as an element reached)."""
    return ElementReached.model_construct(  # type: ignore[return-value]
        activity_id=activity_id, element_id=name, subject=state.subject, entry=entry, at=at,
        incarnation=state.incarnation)


def left(activity_id: str, state: CustomerState, journey: Journey, entry: int, at: datetime,
         name: str) -> list[AnyEffect]:
    """The exit `name` of run `entry`, counted once: when no element of that run waits any
    more (a run split by a branch ends with its last waiting path)."""
    if any(i.entry == entry for i in journey.waiting):
        return []
    return [counted(activity_id, state, entry, at, name)]


# --- re-entry ----------------------------------------------------------------------------------
def refused_entry(activity: Activity, journey: Journey | None, at: datetime,
                  key: str | None = None) -> str | None:
    """The rule that keeps a customer from entering again now, or None: a keyed activity's
    event without its key or whose key's run is under way, `max_entries`, then `min_interval`
    (counted from their last entry, on the activity's calendar)."""
    if activity.key is not None:
        if key is None:
            return "no_key"
        if journey is not None and any(i.key == key for i in journey.waiting):
            return "run_under_way"
    if journey is None or not journey.entries:
        return None
    if activity.max_entries is not None and journey.entries >= activity.max_entries:
        return "max_entries"
    interval, last = activity.min_interval, journey.last_entered_at
    if interval is not None and last is not None \
            and at < due_after(activity, last, interval.amount, interval.unit):
        return "min_interval"
    return None


# --- holdout -----------------------------------------------------------------------------------
def in_holdout(activity: Activity, subject: str) -> bool:
    """Deterministic: a hash of the customer and the activity, below the percentage."""
    if activity.holdout is None:
        return False
    roll = Decimal(str(stable_chance(f"holdout/{activity.id}/{subject}"))) * 100
    return roll < activity.holdout.percent


def start(run: Run) -> None:
    """A new entry's run: the activity's version is recorded; in the control group, it is
    counted and walked without actions."""
    run.journey.version = run.activity.version
    if in_holdout(run.activity, run.state.subject):
        run.holdout = True
        run.effects.append(counted(run.activity.id, run.state, run.entry, run.now, HOLDOUT))


# --- goals -------------------------------------------------------------------------------------
def goal_met(activity: Activity, state: CustomerState, at: datetime,
             detail: Detail | None = None, occurrence: Occurrence | None = None) -> bool:
    """Does any goal hold: this event (if any) is a goal event, or a goal's conditions hold?"""
    return any(_meets(g, activity, state, at, detail, occurrence) for g in activity.goals)


def conditions_met(activity: Activity, state: CustomerState, at: datetime) -> bool:
    return any(_meets(g, activity, state, at, None, None) for g in activity.goals
               if g.conditions)


# --- keyed runs --------------------------------------------------------------------------------
MAX_KEY = 128  # characters of a key kept in the state


def key_of(activity: Activity, detail: Detail | None,
           occurrence: Occurrence | None = None) -> str | None:
    """The value of the activity's key field in this event (a field of the detail, or a custom
    event's parameter), or None when the activity is not keyed or the event lacks it."""
    if activity.key is None or detail is None:
        return None
    value = getattr(detail, activity.key, None)
    if value is None:
        value = (getattr(detail, "parameters", None) or {}).get(activity.key)
    if value is None and occurrence is not None:
        value = occurrence.fields.get(activity.key)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[:MAX_KEY]


def same_run(instance_key: str | None, event_key: str | None) -> bool:
    """Does an event carrying `event_key` (None: no key field) reach a run keyed `instance_key`?
    An event without the key field reaches every run; one with it, the run of that key only."""
    return event_key is None or instance_key is None or instance_key == event_key


def _meets(goal: Goal, activity: Activity, state: CustomerState, at: datetime,
           detail: Detail | None, occurrence: Occurrence | None) -> bool:
    if goal.conditions:
        return all(holds(c, state, activity, at) for c in goal.conditions)
    if detail is None or (occurrence is None and detail.BEHAVIOUR):
        return False  # behaviour without tracking consent is not reacted to (`record`)
    kind, fields = _event_fields(detail, occurrence)
    return kind == goal.event and all(p.match.matches(fields.get(p.name))
                                      for p in goal.parameters)


def _event_fields(detail: Detail, occurrence: Occurrence | None) -> tuple[str, dict[str, Any]]:
    """The event's name (a custom event's own name) and its text fields, as triggers see them."""
    if occurrence is not None:
        return occurrence.kind, occurrence.fields
    name = getattr(detail, "name", None) if detail.DETAIL_TYPE == "CustomEvent" else None
    fields = {k: str(v) for k, v in detail.model_dump(mode="json").items()
              if isinstance(v, str | int | float) and not isinstance(v, bool)}
    if name is not None:
        fields.update({k: str(v) for k, v in getattr(detail, "parameters", {}).items()})
    return name or detail.DETAIL_TYPE, fields


def end_at_goal(state: CustomerState, activity: Activity, journey: Journey,
                at: datetime, key: str | None = None) -> list[AnyEffect]:
    """Every run of the customer waiting in `activity` (of that `key` only, if the goal event
    carried one) ends here (their timers then find nobody), each counted once: `@goal`, or
    `@holdout_goal` for the control group."""
    ending = [i for i in journey.waiting if same_run(i.key, key)]
    runs = {(i.entry, i.holdout) for i in ending}
    journey.waiting[:] = [i for i in journey.waiting if not same_run(i.key, key)]
    return [counted(activity.id, state, entry, at, HOLDOUT_GOAL if holdout else GOAL)
            for entry, holdout in sorted(runs)]


# --- safe editing ------------------------------------------------------------------------------
def relocate(run: Run, element_id: str) -> None:
    """A customer waiting at `element_id`, which an edit removed: on at the element `moved`
    names (walked from there), or out of the activity; counted either way, never silently."""
    target = run.activity.moved.get(element_id)
    at, entry = run.now, run.entry
    if target is None:
        run.effects.append(counted(run.activity.id, run.state, entry, at, ENDED_REMOVED))
        return
    run.effects.append(counted(run.activity.id, run.state, entry, at, MOVED))
    run.walk(target)


# --- pause -------------------------------------------------------------------------------------
def recheck(state: CustomerState, activity: Activity, entry: int, element: str,
            at: datetime) -> list[AnyEffect]:
    """A paused activity's wait ran out: its timer is set again for PAUSE_RECHECK later (the
    customer keeps their place and due time), and counted once per wait as `@paused`."""
    return [WaitStarted.model_construct(  # type: ignore[list-item]
        activity_id=activity.id, element_id=element, subject=state.subject, entry=entry, at=at,
        incarnation=state.incarnation, due_at=at + PAUSE_RECHECK)]
