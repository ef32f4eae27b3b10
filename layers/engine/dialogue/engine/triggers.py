"""Does this event fire this event-driven trigger for this customer?

Counting triggers ("searched 3 times in 30 days") count matching occurrences in the time frame
that happened after `since` (the customer's last entry, or when they started waiting here).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dialogue.model.activity import (
    Activity,
    EventTrigger,
    PlacesOrderTrigger,
    PromotionCheckoutTrigger,
    RegistersTrigger,
    SearchesTrigger,
    SocialTrigger,
    WaitForEventTrigger,
)
from dialogue.model.customer import CustomerState, Occurrence
from dialogue.model.events import Detail, OrderPlaced
from dialogue.model.matching import TimeFrame


def fires(
    trigger: EventTrigger, detail: Detail, occurrence: Occurrence | None, state: CustomerState,
    activity: Activity, now: datetime, since: datetime | None,
) -> bool:
    match trigger:
        case RegistersTrigger():
            return True
        case PlacesOrderTrigger():
            assert isinstance(detail, OrderPlaced)
            if trigger.min_total is not None and detail.total < trigger.min_total:
                return False
            wanted = {c.casefold() for c in trigger.categories}
            return not wanted or any(c.casefold() in wanted
                                     for ln in detail.lines for c in ln.categories)
        case PromotionCheckoutTrigger():
            assert isinstance(detail, OrderPlaced)
            code = trigger.promotion.casefold()
            if code not in {c.casefold() for c in detail.promotion_codes}:
                return False
            times = sum(
                1 for o in state.orders
                if code in {c.casefold() for c in o.promotion_codes}
                and _counts(trigger.time_frame, o.at, now, activity, since)
            )
            return times >= trigger.times
        case SearchesTrigger():
            return _count(trigger, occurrence, state, activity, now, since,
                          lambda o: trigger.keyword.matches(o.fields.get("query"))) >= trigger.times
        case SocialTrigger():
            return _count(trigger, occurrence, state, activity, now, since,
                          lambda o: trigger.kind in ("any", o.fields.get("kind"))) >= trigger.times
        case WaitForEventTrigger():
            def ok(o: Occurrence) -> bool:
                return o.kind == trigger.event and all(
                    p.match.matches(o.fields.get(p.name)) for p in trigger.parameters
                )
            return _count(trigger, occurrence, state, activity, now, since, ok) >= trigger.times
    return False  # pragma: no cover


def _count(
    trigger: SearchesTrigger | SocialTrigger | WaitForEventTrigger, occurrence: Occurrence | None,
    state: CustomerState, activity: Activity, now: datetime, since: datetime | None,
    ok: Callable[[Occurrence], bool],
) -> int:
    """Matching occurrences, this event's included even when tracking keeps it out of history."""
    if occurrence is None or not ok(occurrence):
        return 0  # the trigger fires on a matching event, never on an unrelated one
    # A late event is recorded in its place in time, not last: look for it by identity.
    recorded = any(o is occurrence for o in reversed(state.behaviour))
    history = state.behaviour if recorded else [*state.behaviour, occurrence]
    return sum(
        1 for o in history
        if o.kind == occurrence.kind and ok(o)
        and _counts(trigger.time_frame, o.at, now, activity, since)
    )


def _counts(frame: TimeFrame, at: datetime, now: datetime, activity: Activity,
            since: datetime | None) -> bool:
    return (since is None or at > since) and frame.contains(at, now, activity.zone,
                                                            activity.start_date)
