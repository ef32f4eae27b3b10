"""The decision core: (customer state, event, catalog, now) → (new state, effects).

Pure: no I/O, no clock, no hidden randomness. The service layer loads the state, calls `decide`,
and commits the new state and the effects in one conditional write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from dialogue.model.activity import Activity, Element, EventTrigger, trigger_event
from dialogue.model.customer import CustomerState, Instance, Journey, Occurrence
from dialogue.model.effects import AnyEffect
from dialogue.model.events import Detail, OrderPlaced, ShopEvent

from . import controls
from .catalog import Catalog
from .flow import Chance, Codes, ElementFailed, Run, new_coupon_code, stable_chance
from .record import record
from .triggers import fires, seen_at


@dataclass(frozen=True)
class ActivityError:
    """One activity that failed for one customer's event (or timer, or daily check): it was
    skipped, its changes undone, the customer left where they were in it (not entered, or
    still waiting). The other activities' effects stand. No personal data: ids and the error."""

    activity_id: str
    element_id: str
    event_id: str
    reason: str

    def __str__(self) -> str:
        return (f"activity {self.activity_id} : element {self.element_id} : event "
                f"{self.event_id} : {self.reason}")


@dataclass
class Decision:
    """The new state and its effects; `duplicate`: nothing to write (the state is as given).
    `errors`: the activities skipped because they failed (to log at ERROR and count)."""

    state: CustomerState
    effects: list[AnyEffect] = field(default_factory=list)
    duplicate: bool = False
    errors: list[ActivityError] = field(default_factory=list)
    # A second state to commit with this one, (new, as read): the guest a login merges.
    also: tuple[CustomerState, CustomerState] | None = None


def decide(state: CustomerState, event: ShopEvent, catalog: Catalog, now: datetime,
           chance: Chance = stable_chance, codes: Codes = new_coupon_code) -> Decision:
    """Apply one shop event. An event id already applied to this customer changes nothing.

    `chance` picks random paths, `codes` draws coupon codes: both come from the caller.
    """
    detail = event.detail
    if state.has_processed(detail.event_id):
        return Decision(state=state, duplicate=True)
    state = writable(state)
    state.remember(detail.event_id, now)
    if isinstance(detail, OrderPlaced) and any(o.order_id == detail.order_id
                                               for o in state.orders):
        return Decision(state=state, duplicate=True)  # the shop re-sent an order it had sent
    occurrence = record(state, detail)
    # An event is judged at the moment it happened (an order at 23:59 on an activity's last day
    # counts even if processed after midnight), never in the future.
    at = min(detail.occurred_at, now)
    effects: list[AnyEffect] = []
    ctx = _Context(detail, occurrence, at, chance, codes)
    effects += goals_reached(state, catalog, at, ctx.errors, detail.event_id, detail, occurrence)
    effects += _resume_waiting(state, catalog, ctx)
    for activity, trigger in catalog.entries_for(detail):
        effects += isolated(state, ctx.errors, activity.id, trigger.id, detail.event_id,
                            partial(_enter, state, activity, trigger, ctx))
    return Decision(state=state, effects=effects, errors=ctx.errors)


def isolated(state: CustomerState, errors: list[ActivityError], activity_id: str,
             element_id: str, event_id: str, step: Callable[[], list[AnyEffect]]
             ) -> list[AnyEffect]:
    """One activity's part of a decision, so that its failure cannot cancel the others': if
    `step` raises, what it changed in the (`writable`) state is put back, no effect of it is
    kept and the failure is added to `errors`, naming the element that raised."""
    journey, segments = state.journeys.get(activity_id), dict(state.segments)
    history, sends = list(state.segment_history), {c: list(s) for c, s in state.sends.items()}
    try:
        return step()
    except Exception as e:  # noqa: BLE001 - reported in the decision, logged and counted
        if journey is None:
            state.journeys.pop(activity_id, None)
        else:
            state.journeys[activity_id] = journey
        state.segments.clear()
        state.segments.update(segments)
        state.segment_history[:] = history
        state.sends = sends
        cause = e.__cause__ if isinstance(e, ElementFailed) and e.__cause__ else e
        where = e.element_id if isinstance(e, ElementFailed) else element_id
        reason = f"{type(cause).__name__}: {cause}"[:300]
        errors.append(ActivityError(activity_id, where, event_id, reason))
        return []


def writable(state: CustomerState) -> CustomerState:
    """A copy that shares only what a decision never changes in place (the caller's state stays
    as it was); journeys are copied when one is written (`own_journey`)."""
    return state.model_copy(update={
        "processed": dict(state.processed), "behaviour": list(state.behaviour),
        "orders": list(state.orders), "segments": dict(state.segments),
        "segment_history": list(state.segment_history), "journeys": dict(state.journeys),
        "sends": {c: list(s) for c, s in state.sends.items()},
    })


def own_journey(state: CustomerState, activity_id: str) -> Journey:
    """The activity's journey in a `writable` state, copied so it may be changed in place."""
    journey = state.journeys.get(activity_id)
    journey = (journey.model_copy(update={"waiting": list(journey.waiting)})
               if journey is not None else Journey())
    state.journeys[activity_id] = journey
    return journey


@dataclass
class _Context:
    """What every run of this decision shares."""

    detail: Detail
    occurrence: Occurrence | None
    at: datetime
    chance: Chance
    codes: Codes
    _event: dict[str, Any] | None = None
    errors: list[ActivityError] = field(default_factory=list)

    def run(self, activity: Activity, state: CustomerState, journey: Journey,
            entry: int) -> Run:
        if self._event is None:  # serialised once, and only when an activity is walked
            self._event = self.detail.model_dump(mode="json")
        return Run(activity, state, journey, entry, self.at, self.detail.event_id, self.chance,
                   self.codes, self._event)


def _enter(state: CustomerState, activity: Activity, trigger: EventTrigger,
           ctx: _Context) -> list[AnyEffect]:
    detail, occurrence, at = ctx.detail, ctx.occurrence, ctx.at
    current = state.journeys.get(activity.id)
    if current is not None and current.entries and not activity.repeatable:
        return []  # non-repeatable: a customer enters once, ever
    if not activity.is_live(at):
        return []
    since = current.last_entered_at if current is not None else None
    seen = current.seen_at_entry if current is not None else 0
    if not fires(trigger, detail, occurrence, state, activity, at, since, seen):
        return []
    key = controls.key_of(activity, detail, occurrence)
    refused = controls.refused_entry(activity, current, at, key)
    if refused is not None:
        return [controls.counted(activity.id, state, 0, at, controls.NOT_ENTERED + refused)]
    journey = own_journey(state, activity.id)
    journey.entries += 1
    journey.last_entered_at = at
    journey.seen_at_entry = seen_at(trigger, state, at)
    state.journeys[activity.id] = journey
    run = ctx.run(activity, state, journey, journey.entries)
    run.key = key
    run.reached(trigger)
    controls.start(run)
    run.walk(trigger.next)
    return run.effects


def goals_reached(state: CustomerState, catalog: Catalog, at: datetime,
                  errors: list[ActivityError], event_id: str, detail: Detail | None = None,
                  occurrence: Occurrence | None = None) -> list[AnyEffect]:
    """Customers waiting in an activity whose goal this event (or what now holds) meets leave
    it at once, wherever they wait (`controls.end_at_goal`)."""
    effects: list[AnyEffect] = []
    for activity_id, journey in list(state.journeys.items()):
        activity = catalog.get(activity_id)
        if not journey.waiting or activity is None or not activity.goals:
            continue
        effects += isolated(state, errors, activity_id, "goals", event_id,
                            partial(_end_if_met, state, activity, at, detail, occurrence))
    return effects


def _end_if_met(state: CustomerState, activity: Activity, at: datetime, detail: Detail | None,
                occurrence: Occurrence | None) -> list[AnyEffect]:
    if controls.conditions_met(activity, state, at):
        return controls.end_at_goal(state, activity, own_journey(state, activity.id), at)
    if not controls.goal_met(activity, state, at, detail, occurrence):
        return []
    key = controls.key_of(activity, detail, occurrence)
    return controls.end_at_goal(state, activity, own_journey(state, activity.id), at, key)


def _resume_waiting(state: CustomerState, catalog: Catalog, ctx: _Context) -> list[AnyEffect]:
    """Customers parked at a later trigger that this event fires go on from there."""
    detail, at = ctx.detail, ctx.at
    effects: list[AnyEffect] = []
    for activity_id, journey in list(state.journeys.items()):
        if not journey.waiting:
            continue
        activity = catalog.get(activity_id)
        if activity is None:
            continue
        for instance in list(journey.waiting):
            element = activity.by_id.get(instance.element)
            if element is None or trigger_event(element) != detail.DETAIL_TYPE:
                continue
            if instance.due_at is not None and at >= instance.due_at:
                continue  # its timeout ran out first: the timer takes the customer on (`wake`)
            if not controls.same_run(instance.key, controls.key_of(activity, detail,
                                                                   ctx.occurrence)):
                continue  # a keyed run: this event belongs to another of its runs
            effects += isolated(state, ctx.errors, activity_id, element.id, detail.event_id,
                                partial(_resume, state, activity, element, instance, ctx))
    return effects


def _resume(state: CustomerState, activity: Activity, element: Element, instance: Instance,
            ctx: _Context) -> list[AnyEffect]:
    """The customer parked at `element` goes on if this event fires it (and the activity runs)."""
    if not activity.is_live(ctx.at) or not fires(
            element, ctx.detail, ctx.occurrence, state, activity,  # type: ignore[arg-type]
            ctx.at, instance.since, instance.seen):
        return []
    journey = own_journey(state, activity.id)
    journey.waiting.remove(instance)  # a timeout's timer now finds nobody: a no-op
    run = ctx.run(activity, state, journey, instance.entry)
    run.holdout, run.key = instance.holdout, instance.key
    run.walk(element.next)  # reaching `element` was counted when the customer parked
    return run.effects
