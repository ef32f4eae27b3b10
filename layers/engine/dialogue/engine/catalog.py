"""The active activities and segments, indexed so an event only meets the triggers it can fire.

Entry triggers are indexed by detail-type and, where the trigger names one, by a key the event
carries: a promotion code, an order line's category, an exact search keyword, a custom event's
name, a social participation kind, an exact parameter of an awaited shop event. An event's cost
then follows the activities it may start, not the size of the catalog.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dialogue.model.activity import (
    Activity,
    AddToSegment,
    Branch,
    DailyTrigger,
    Element,
    EventTrigger,
    IssueCoupon,
    PlacesOrderTrigger,
    PromotionCheckoutTrigger,
    RemoveFromSegment,
    SearchesTrigger,
    SendMessage,
    SocialTrigger,
    Trigger,
    Wait,
    WaitForEventTrigger,
    trigger_event,
)
from dialogue.model.events import (
    CategoryViewed,
    CustomEvent,
    Detail,
    OrderPlaced,
    PageVisited,
    ProductViewed,
    SearchPerformed,
    SocialParticipation,
)
from dialogue.model.matching import TextRule
from dialogue.model.segment import Segment
from dialogue.model.template import EmailTemplate, SmsTemplate

Entry = tuple[Activity, EventTrigger]
ANY = ""  # the key of triggers every event of their type must meet


def trigger_keys(trigger: EventTrigger) -> list[str]:
    """The keys under which an event can fire `trigger` ([ANY] when it cannot be narrowed)."""
    match trigger:
        case PromotionCheckoutTrigger():
            return [f"promotion:{trigger.promotion.casefold()}"]
        case PlacesOrderTrigger() if trigger.categories:
            return [f"category:{c.casefold()}" for c in trigger.categories]
        case SearchesTrigger() if trigger.keyword.rule is TextRule.EXACT:
            return [f"query:{trigger.keyword.value.casefold().strip()}"]
        case SocialTrigger() if trigger.kind != "any":
            return [f"kind:{trigger.kind}"]
        case WaitForEventTrigger() if trigger.detail_type == "CustomEvent":
            return [f"name:{trigger.event}"]
        case WaitForEventTrigger():
            exact = [p for p in trigger.parameters if p.match.rule is TextRule.EXACT]
            if exact:
                return [f"param:{exact[0].name}={exact[0].match.value.casefold().strip()}"]
    return [ANY]


def event_keys(detail: Detail) -> list[str]:
    """The keys this event carries, ANY first."""
    match detail:
        case OrderPlaced():
            return [ANY, *{f"promotion:{c.casefold()}" for c in detail.promotion_codes},
                    *{f"category:{c.casefold()}" for ln in detail.lines for c in ln.categories}]
        case SearchPerformed():
            return [ANY, f"query:{detail.query.casefold().strip()}"]
        case SocialParticipation():
            return [ANY, f"kind:{detail.kind}"]
        case CustomEvent():
            return [ANY, f"name:{detail.name}"]
        case CategoryViewed():
            return [ANY, _param("category", detail.category)]
        case ProductViewed():
            return [ANY, _param("product_id", detail.product_id),
                    _param("manufacturer", detail.manufacturer)]
        case PageVisited():
            return [ANY, _param("url", detail.url), _param("referrer", detail.referrer),
                    *(_param(k, v) for k, v in detail.url_parameters.items())]
    return [ANY]


def _param(name: str, value: str | None) -> str:
    return f"param:{name}={(value or '').casefold().strip()}"


class Catalog:
    def __init__(self, activities: Iterable[Activity] = (), segments: Iterable[Segment] = (),
                 templates: Iterable[EmailTemplate | SmsTemplate] = ()):
        self.activities: dict[str, Activity] = {a.id: a for a in activities}
        self.segments: dict[str, Segment] = {s.id: s for s in segments}
        self.templates: dict[str, EmailTemplate | SmsTemplate] = {t.id: t for t in templates}
        self._entries: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        for activity in self.activities.values():
            detail_type = trigger_event(activity.entry)
            if detail_type is None:
                continue
            trigger: EventTrigger = activity.entry  # type: ignore[assignment]
            for key in trigger_keys(trigger):
                self._entries[(detail_type, key)].append((activity, trigger))

    def entries_for(self, detail: Detail) -> list[Entry]:
        """The activities whose first element this event may fire, each once, in catalog order."""
        found: dict[str, Entry] = {}
        for key in event_keys(detail):
            for entry in self._entries.get((detail.DETAIL_TYPE, key), ()):
                found.setdefault(entry[0].id, entry)
        if len(found) > 1:
            order = {activity_id: i for i, activity_id in enumerate(self.activities)}
            return sorted(found.values(), key=lambda e: order[e[0].id])
        return list(found.values())

    def get(self, activity_id: str) -> Activity | None:
        return self.activities.get(activity_id)

    def segment_name(self, segment_id: str) -> str:
        seg = self.segments.get(segment_id)
        return seg.name if seg else segment_id


# --- what one event can write ------------------------------------------------------------------
# The most writes one event (or one customer's daily check) may need in the whole catalog: the
# state, one counter row per activity, one per message, coupon and timer, two per segment change
# (the member and the day's statistics). DynamoDB takes 100 items per transaction, so the store
# splits larger ones; validation refuses an activity that would take an event beyond this.
MAX_EVENT_WRITES = 500
BASE_WRITES = 2  # the state, and the RFM histogram's row an order moves
# Rows the table's stream relays (message jobs, coupons, segment members) must commit in the one
# transaction that moves the state (aws/transactions.py): 99 beside the state, whatever the split.
MAX_RELAYED_ROWS = 99
DAILY = "daily check"


def writes_by_event(activity: Activity, relayed_only: bool = False) -> dict[str, int]:
    """Per kind of event (a detail-type, a custom event's name, or DAILY), the most writes one
    such event can need in `activity`: entering it, and going on from each later trigger it can
    fire (one customer waiting there; a repeatable activity's other entries waiting at the same
    trigger add as many again)."""
    out: dict[str, int] = {}
    for i, el in enumerate(activity.elements):
        kind = _event_kind(el)
        if kind is None or (i > 0 and not isinstance(el, Trigger)):
            continue
        first = out.get(kind, 0 if relayed_only else 1)  # the activity's counter row, once
        out[kind] = first + _writes_from(activity, el.next, relayed_only)
    return out


def _event_kind(el: Element) -> str | None:
    if isinstance(el, WaitForEventTrigger) and el.detail_type == "CustomEvent":
        return f"CustomEvent {el.event!r}"
    if isinstance(el, DailyTrigger):
        return DAILY
    return trigger_event(el)


def _writes_from(activity: Activity, start: str | None, relayed_only: bool = False) -> int:
    """Writes of one walk from `start` (every path taken: an element runs once per entry), up to
    the waits and later triggers where it parks."""
    writes, stack, seen = 0, [start], set()
    while stack:
        element = activity.by_id.get(stack.pop() or "")
        if element is None or element.id in seen:
            continue
        seen.add(element.id)
        match element:
            case SendMessage() | IssueCoupon():
                writes += 1
            case AddToSegment() | RemoveFromSegment():
                writes += 1 if relayed_only else 2  # the member row (and its statistics)
            case Wait():
                writes += 0 if relayed_only else 1
                continue
            case Trigger():
                writes += element.timeout is not None and not relayed_only
                continue
            case Branch():
                stack += [p.next for p in element.paths]
                continue
        stack.append(element.next)
    return writes
