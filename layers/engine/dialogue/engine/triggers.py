"""Does this event fire this event-driven trigger for this customer?

Counting triggers ("searched 3 times in 30 days") count matching occurrences in the time frame
that happened after `since` (the customer's last entry, or when they started waiting here).
Histories keep times to the second and shops often send no more: an occurrence of the very
second of `since` counts unless it was already in the history then (`seen` of them were: the
history keeps a second's occurrences in arrival order), so every occurrence counts once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from dialogue.model.activity import (
    Activity,
    EventTrigger,
    MessageOutcomeTrigger,
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
    activity: Activity, now: datetime, since: datetime | None, seen: int = 0,
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
                1 for o in _after(state.orders, since, seen)
                if code in {c.casefold() for c in o.promotion_codes}
                and _in_frame(trigger.time_frame, o.at, now, activity)
            )
            return times >= trigger.times
        case SearchesTrigger():
            return _count(trigger, occurrence, state, activity, now, (since, seen),
                          lambda o: trigger.keyword.matches(o.fields.get("query"))) >= trigger.times
        case SocialTrigger():
            return _count(trigger, occurrence, state, activity, now, (since, seen),
                          lambda o: trigger.kind in ("any", o.fields.get("kind"))) >= trigger.times
        case MessageOutcomeTrigger():
            return outcome_of(trigger, activity, occurrence)
        case WaitForEventTrigger():
            def ok(o: Occurrence) -> bool:
                return o.kind == trigger.event and all(
                    p.match.matches(o.fields.get(p.name)) for p in trigger.parameters
                )
            return _count(trigger, occurrence, state, activity, now, (since, seen),
                          ok) >= trigger.times
    return False  # pragma: no cover


OUTCOME_EVENTS = {"delivered": "EmailDelivered", "opened": "EmailOpened",
                  "clicked": "EmailClicked", "bounced": "EmailBounced"}


def outcome_of(trigger: MessageOutcomeTrigger, activity: Activity,
               occurrence: Occurrence | None) -> bool:
    """A delivery, bounce, open or click SES reported for an e-mail of this activity and that
    element's template (the mail's tags carry the activity and the template,
    `delivery.tracking`)."""
    message = activity.by_id.get(trigger.message)
    if occurrence is None or message is None or occurrence.kind != OUTCOME_EVENTS[trigger.outcome]:
        return False
    return (occurrence.fields.get("campaign") == activity.id
            and occurrence.fields.get("template") == getattr(message, "template", None))


def seen_at(trigger: object, state: CustomerState, at: datetime) -> int:
    """How many occurrences of `at`'s second the history a counting trigger reads holds now:
    kept beside `since` when a customer enters or parks, so that later ones of that second
    still count (0 for a trigger that does not count)."""
    match trigger:
        case PromotionCheckoutTrigger():
            history: Sequence[Any] = state.orders
        case SearchesTrigger() | SocialTrigger() | WaitForEventTrigger():
            history = state.behaviour
        case _:
            return 0
    mark = _second(at)
    return bisect_right(history, mark, key=_second_of) - bisect_left(history, mark,
                                                                        key=_second_of)


def _count(
    trigger: SearchesTrigger | SocialTrigger | WaitForEventTrigger, occurrence: Occurrence | None,
    state: CustomerState, activity: Activity, now: datetime,
    mark: tuple[datetime | None, int], ok: Callable[[Occurrence], bool],
) -> int:
    """Matching occurrences, this event's included even when tracking keeps it out of history."""
    if occurrence is None or not ok(occurrence):
        return 0  # the trigger fires on a matching event, never on an unrelated one
    since, seen = mark
    history = _after(state.behaviour, since, seen)
    # A late event is recorded in its place in time, not last: look for it by identity.
    if not any(o is occurrence for o in reversed(state.behaviour)) and (
            since is None or _second(occurrence.at) >= _second(since)):
        history = [*history, occurrence]  # not recorded (no tracking consent): counted once
    return sum(
        1 for o in history
        if o.kind == occurrence.kind and ok(o)
        and _in_frame(trigger.time_frame, o.at, now, activity)
    )


def _after(history: Sequence[Any], since: datetime | None, seen: int) -> Sequence[Any]:
    """The records (oldest first) after the mark: of a later second, or of its second but not
    among the `seen` first of it."""
    if since is None:
        return history
    mark = _second(since)
    first = bisect_left(history, mark, key=_second_of)
    return history[min(first + seen, bisect_right(history, mark, key=_second_of)):]


def _second(at: datetime) -> int:
    return int(at.timestamp())


def _second_of(record: Any) -> int:
    return int(record.at.timestamp())


def _in_frame(frame: TimeFrame, at: datetime, now: datetime, activity: Activity) -> bool:
    return frame.contains(at, now, activity.zone, activity.start_date)
