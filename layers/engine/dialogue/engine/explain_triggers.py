"""Why a trigger has (not) fired for a customer, read from their state: `explain`'s helper.

An event trigger fires on an event, so its verdict is about the history the state keeps (an
order of at least 50, a search for 'rossi'); a daily trigger's is about the state itself (in the
segment, a birthday in the profile, a cart left so many days ago).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dialogue.model.activity import (
    AbandonsCartTrigger,
    Activity,
    BirthdayTrigger,
    Element,
    InSegmentTrigger,
    PlacesOrderTrigger,
    PromotionCheckoutTrigger,
    RegistersTrigger,
    SearchesTrigger,
    SocialTrigger,
    WaitForEventTrigger,
)
from dialogue.model.customer import CustomerState
from dialogue.model.matching import Comparison, TimeFrame


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str


def trigger_verdict(el: Element, state: CustomerState, activity: Activity,
                    now: datetime) -> Verdict:
    zone = activity.zone
    match el:
        case RegistersTrigger():
            if state.registered_at is None:
                return Verdict(False, "has not registered")
            return Verdict(True, f"registered {state.registered_at.astimezone(zone):%Y-%m-%d}")
        case PlacesOrderTrigger():
            fit = [o for o in state.orders
                   if (el.min_total is None or o.total >= el.min_total)
                   and (not el.categories or any(
                       c.casefold() in {w.casefold() for w in el.categories}
                       for ln in o.lines for c in ln.categories))]
            need = (f" of at least {number(el.min_total)}" if el.min_total is not None else "") \
                + (f" in {', '.join(el.categories)}" if el.categories else "")
            if not fit:
                biggest = max((o.total for o in state.orders), default=None)
                seen = f" (largest order {number(biggest)})" if biggest is not None else \
                    " (no orders)"
                return Verdict(False, f"no order{need}{seen}")
            return Verdict(True, f"{len(fit)} order(s){need}")
        case PromotionCheckoutTrigger():
            code = el.promotion.casefold()
            times = sum(1 for o in state.orders
                        if code in {c.casefold() for c in o.promotion_codes})
            return Verdict(times >= el.times, f"checked out with {el.promotion} {times} time(s), "
                           f"needs {el.times}{time_frame(el.time_frame)}")
        case SearchesTrigger() | SocialTrigger() | WaitForEventTrigger():
            return _counted(el, state)
        case InSegmentTrigger():
            inside = [s for s in el.segments if state.in_segment(s, now)]
            if inside:
                return Verdict(True, "in segment " + ", ".join(inside))
            return Verdict(False, "not in segment " + ", ".join(el.segments))
        case BirthdayTrigger():
            if state.profile.birthday is None:
                return Verdict(False, "no birthday in the profile")
            return Verdict(True, f"birthday {state.profile.birthday:%m-%d} "
                           f"(greeted {el.days_before} day(s) before)")
        case AbandonsCartTrigger():
            if state.cart is None or not state.cart.lines:
                return Verdict(False, "no cart left with items")
            changed = state.cart.updated_at.astimezone(zone).date()
            days = (now.astimezone(zone).date() - changed).days
            need = f"{el.days}" if el.mode == "daily" else f"{el.min_days}-{el.max_days}"
            return Verdict(True, f"cart last changed {days} day(s) ago (needs {need})")
    return Verdict(False, f"{el.type}: not a trigger")


def _counted(el: SearchesTrigger | SocialTrigger | WaitForEventTrigger,
             state: CustomerState) -> Verdict:
    match el:
        case SearchesTrigger():
            hits = [o for o in state.behaviour if o.kind == "SearchPerformed"
                    and el.keyword.matches(o.fields.get("query"))]
            what = f"searches {el.keyword.rule.value} {el.keyword.value!r}"
        case SocialTrigger():
            hits = [o for o in state.behaviour if o.kind == "SocialParticipation"
                    and el.kind in ("any", o.fields.get("kind"))]
            what = f"social {el.kind}"
        case WaitForEventTrigger():
            hits = [o for o in state.behaviour if o.kind == el.event and all(
                p.match.matches(o.fields.get(p.name)) for p in el.parameters)]
            what = f"event {el.event}"
    return Verdict(len(hits) >= el.times, f"{what}: {len(hits)} kept in history, "
                   f"needs {el.times}{time_frame(el.time_frame)}")


_SIGNS = {"at_least": (">=", "<"), "greater_than": (">", "<="), "less_than": ("<", ">="),
          "exactly": ("=", "!=")}


def compared(c: Comparison, ok: bool) -> str:
    """The comparison as it went: `< 1000` when "at least 1000" failed."""
    if c.op == "between":
        return f"{'' if ok else 'not '}between {number(c.value)} and {number(c.max or 0)}"
    return f"{_SIGNS[c.op][0 if ok else 1]} {number(c.value)}"


def number(x: Decimal | int) -> str:
    """Money as money (740.00), whole thresholds as written (1000)."""
    if isinstance(x, int):
        return str(x)
    exponent = x.as_tuple().exponent
    return f"{x:.2f}" if isinstance(exponent, int) and exponent < 0 else f"{x:f}"


def time_frame(frame: TimeFrame) -> str:
    match frame.kind:
        case "any_time":
            return ""
        case "last_days":
            return f" (last {frame.days} days)"
        case "between":
            return f" ({frame.start} to {frame.end})"
        case "since_activity_start":
            return " (since the activity started)"
    return f" ({frame.kind} {frame.day})"
