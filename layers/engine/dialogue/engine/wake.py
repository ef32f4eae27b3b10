"""A timer's end: the customer parked at a wait (or at a later trigger with a timeout) goes on.

Pure, like `decide`: (state, catalog, timer, now) → decision. Timers are delivered at least once
and may be stale, so the customer's state decides: only an instance still parked at that element
for that entry, and due, is resumed; anything else changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from dialogue.model.activity import Activity, Trigger, Wait
from dialogue.model.customer import CustomerState, Instance
from dialogue.model.effects import AnyEffect

from . import controls
from .catalog import Catalog
from .decide import ActivityError, Decision, isolated, own_journey, writable
from .flow import Chance, Codes, Run, new_coupon_code, stable_chance
from .timers import TimerRef


def wake(state: CustomerState, catalog: Catalog, timer: TimerRef, now: datetime,
         chance: Chance = stable_chance, codes: Codes = new_coupon_code) -> Decision:
    """Resume the customer `timer` was set for, once.

    `duplicate=True` (nothing to write) when nobody waits there any more (already resumed,
    moved on through the awaited event, left the activity) or when the wait is not over yet.
    A customer waiting in an activity that was deleted, deactivated, has ended, or was edited so
    that their element is gone or is no longer a wait, leaves it without any action.
    """
    instance = _waiting(state, timer.activity_id, timer.entry, timer.element_id)
    if instance is None or instance.due_at is None or instance.due_at > now:
        return Decision(state=state, duplicate=True)
    errors: list[ActivityError] = []
    before, state = state, writable(state)
    effects = isolated(state, errors, timer.activity_id, timer.element_id,
                       f"timer:{timer.activity_id}/{timer.entry}/{timer.element_id}",
                       partial(resume, state, catalog, timer.activity_id, instance, now, chance,
                               codes))
    if errors:  # the customer stays parked: the daily check's safety net tries again
        return Decision(state=before, duplicate=True, errors=errors)
    return Decision(state=state, effects=effects)


def resume(state: CustomerState, catalog: Catalog, activity_id: str, instance: Instance,
           now: datetime, chance: Chance = stable_chance,
           codes: Codes = new_coupon_code) -> list[AnyEffect]:
    """Take a due `instance` off its element and walk on from there; `state` is `writable`.

    A wait goes on at its `next`, a later trigger at its timeout's `next`. The run's event id
    names the timer, so a retried wake-up takes the same random paths.
    """
    journey = own_journey(state, activity_id)
    activity = catalog.get(activity_id)
    if activity is not None and activity.goals and controls.goal_met(activity, state, now):
        return controls.end_at_goal(state, activity, journey, now)
    journey.waiting.remove(instance)
    if activity is None or closed(activity, now):
        return controls.left(activity_id, state, journey, instance.entry, now,
                             controls.GONE if activity is None else controls.CLOSED)
    if activity.paused:  # keeps its place and due time; looked at again later
        journey.waiting.append(instance.model_copy(update={"held": True}))
        first = [] if instance.held else [controls.counted(activity_id, state, instance.entry,
                                                            now, controls.PAUSED)]
        return first + controls.recheck(state, activity, instance.entry, instance.element, now)
    event_id = f"timer:{activity_id}/{instance.entry}/{instance.element}"
    run = Run(activity, state, journey, instance.entry, now, event_id, chance, codes,
              {"type": "timer", "element": instance.element,
               "due_at": instance.due_at.isoformat() if instance.due_at else None})
    run.holdout, run.key = instance.holdout, instance.key
    run.catch_up = instance.held and activity.on_resume == "next_send_window"
    element = activity.by_id.get(instance.element)
    match element:
        case Wait():
            run.walk(element.next)
        case Trigger(timeout=timeout) if timeout is not None:
            run.walk(timeout.next)
        case Trigger():
            # Edited: the trigger lost its timeout. The customer keeps waiting for its event.
            journey.waiting.append(instance.model_copy(update={"due_at": None}))
        case _:  # removed by an edit, or something else now: moved on or out, and counted
            controls.relocate(run, instance.element)
    return run.effects


def closed(activity: Activity, now: datetime) -> bool:
    """Deactivated, or past the end of its end date: nobody goes on in it any more. (Paused is
    not closed: its customers keep their places.)"""
    end = activity.window[1]
    return activity.state == "inactive" or (end is not None and now >= end)


def _waiting(state: CustomerState, activity_id: str, entry: int,
             element: str) -> Instance | None:
    journey = state.journeys.get(activity_id)
    if journey is None:
        return None
    return next((i for i in journey.waiting if i.entry == entry and i.element == element), None)
