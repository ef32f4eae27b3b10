"""Does the customer satisfy this target? One branch per target kind."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import assert_never
from zoneinfo import ZoneInfo

from dialogue.model.activity import Activity
from dialogue.model.customer import CustomerState, Occurrence
from dialogue.model.matching import TimeFrame
from dialogue.model.targets import (
    AttributeTarget,
    BrowsingTarget,
    CartTarget,
    DayTimeTarget,
    Have,
    OnlineBehaviourTarget,
    PurchaseHistoryTarget,
    SegmentTarget,
    SocialTarget,
    Target,
)

from .record import line_matches, value_of

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def holds(target: Target, state: CustomerState, activity: Activity, now: datetime) -> bool:
    match target:
        case SegmentTarget():
            inside = [state.in_segment(s, now) for s in target.segments]
            return _have(target.match, inside)
        case PurchaseHistoryTarget():
            return _purchases(target, state, activity, now)
        case CartTarget():
            return _cart(target, state)
        case BrowsingTarget():
            views = _behaviour(state, "CategoryViewed" if target.kind == "category"
                               else "ProductViewed", target.time_frame, activity, now)
            per_id = [sum(1 for v in views if _viewed(target, v, wanted)) >= target.times
                      for wanted in target.ids]
            return _have(target.have, per_id)
        case OnlineBehaviourTarget():
            kind, field = {
                "search": ("SearchPerformed", "query"),
                "url_parameter": ("PageVisited", target.parameter or ""),
                "referrer": ("PageVisited", "referrer"),
            }[target.kind]
            hits = [o for o in _behaviour(state, kind, target.time_frame, activity, now)
                    if target.match.matches(o.fields.get(field) or None)]
            return len(hits) >= target.times
        case SocialTarget():
            acts = [o for o in _behaviour(state, "SocialParticipation", target.time_frame,
                                          activity, now)
                    if target.kind in ("any", o.fields.get("kind"))]
            return (len(acts) >= target.times) == target.satisfies
        case DayTimeTarget():
            local = now.astimezone(ZoneInfo(target.time_zone))
            t, weekday = local.time(), local.weekday()
            if target.start <= target.end:
                within = target.start <= t <= target.end
            elif t >= target.start:
                within = True
            else:  # past midnight in a window that wraps: it belongs to the day it opened
                within, weekday = t <= target.end, (weekday - 1) % 7
            return within and WEEKDAYS[weekday] in target.weekdays
        case AttributeTarget():
            return _attribute(target, state)
        case _:
            assert_never(target)


def _have(mode: Have, results: list[bool]) -> bool:
    return {"any": any(results), "all": all(results), "none": not any(results)}[mode]


def _purchases(target: PurchaseHistoryTarget, state: CustomerState, activity: Activity,
               now: datetime) -> bool:
    return target.compare.holds(purchase_measure(target, state, activity, now))


def purchase_measure(target: PurchaseHistoryTarget, state: CustomerState, activity: Activity,
                     now: datetime) -> Decimal | int:
    """The number a purchase-history target compares (also shown by `explain`)."""
    orders = state.orders[-target.last_orders:] if target.last_orders else state.orders
    orders = [o for o in orders
              if target.time_frame.contains(o.at, now, activity.zone, activity.start_date)]
    matching = [[ln for ln in o.lines if line_matches(ln, target.categories, target.products)]
                for o in orders]
    filtered = bool(target.categories or target.products)
    measure: Decimal | int
    if target.measure == "orders" and target.aggregate == "count":
        measure = sum(1 for lines in matching if lines)
    elif target.measure == "items" and target.aggregate == "count":
        measure = sum(ln.quantity for lines in matching for ln in lines)
    elif filtered or target.measure == "items":
        measure = sum((value_of(lines) for lines in matching), Decimal(0))
    else:
        measure = sum((o.total for o in orders), Decimal(0))
    return measure


def _cart(target: CartTarget, state: CustomerState) -> bool:
    lines = state.cart.lines if state.cart else []
    if target.products or target.categories:
        wanted = [*((p, []) for p in target.products), *(("", [c]) for c in target.categories)]
        per_item = [any(line_matches(ln, cats, [p] if p else []) for ln in lines)
                    for p, cats in wanted]
        if not _have(target.have, per_item):
            return False
    elif not _have(target.have, [bool(lines)]):
        return False
    if target.item_count and not target.item_count.holds(sum(ln.quantity for ln in lines)):
        return False
    return not (target.value and not target.value.holds(value_of(lines)))


def _behaviour(state: CustomerState, kind: str, frame: TimeFrame, activity: Activity,
               now: datetime) -> list[Occurrence]:
    return [o for o in state.behaviour
            if o.kind == kind and frame.contains(o.at, now, activity.zone, activity.start_date)]


def _viewed(target: BrowsingTarget, view: Occurrence, wanted: str) -> bool:
    if target.kind == "product":
        return view.fields.get("product_id") == wanted
    names = view.tags if target.include_subcategories else view.tags[:1]
    return wanted.casefold() in {n.casefold() for n in names}


def _attribute(target: AttributeTarget, state: CustomerState) -> bool:
    if target.field.startswith("attributes."):
        raw = state.profile.attributes.get(target.field.removeprefix("attributes."))
    else:
        raw = getattr(state.profile, target.field)
    value = None if raw is None or raw == "" else str(raw)
    match target.op:
        case "exists":
            return value is not None
        case "not_exists":
            return value is None
        case "in":
            return value is not None and value.casefold() in {
                str(v).casefold() for v in target.value or []}  # type: ignore[union-attr]
        case "not_equals":
            return value is None or value.casefold() != str(target.value).casefold()
    if value is None:
        return False
    expected = str(target.value)
    match target.op:
        case "equals":
            return value.casefold() == expected.casefold()
        case "contains":
            return expected.casefold() in value.casefold()
        case "greater" | "less":
            try:
                a, b = Decimal(value), Decimal(expected)
            except ArithmeticError:
                a, b = value, expected  # type: ignore[assignment]  # dates / text compare lexically
            return a > b if target.op == "greater" else a < b
    return False  # pragma: no cover
