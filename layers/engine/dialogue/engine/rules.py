"""Compile a segment's rule tree into one predicate over `Facts` (a customer at a moment).

Done once per catalog: operators and values are resolved here, so evaluating a customer is a
chain of closures. `all` / `any` try their cheap conditions (profile, lifetime totals, scores,
membership) before the windows over histories, and those before the visits' days; among equals,
in the rule's own order (its author's: the telling condition first, often). They have no side
effects, so the order cannot change the result.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, assert_never
from zoneinfo import ZoneInfo

from dialogue.model.segment import AllOf, AnyOf, Condition, Node, Not, Segment
from dialogue.model.segment_fields import (
    BEHAVIOUR_FIELDS,
    ORDER_FIELDS,
    FieldType,
    field_type,
    parse_value,
)

from .fields import Facts, day_start, getter, per_now

Pred = Callable[[Facts], bool]
Test = Callable[[Any, Facts], bool]


def compile_rule(segment: Segment) -> Pred:
    """The segment's rule as one predicate (a managed segment has none: never holds)."""
    if segment.rule is None:
        return lambda f: False
    return _node(segment.rule, segment.zone)[0]


def uses_rfm(segment: Segment) -> bool:
    return any(c.field.startswith("rfm.") for c in segment.conditions())


def _node(node: Node, zone: ZoneInfo) -> tuple[Pred, int]:
    """(predicate, cost): the cost orders the children of all / any, cheapest first."""
    match node:
        case AllOf() | AnyOf():
            parts = sorted((_node(child, zone) for child in
                            (node.all if isinstance(node, AllOf) else node.any)),
                           key=lambda pc: pc[1])
            preds = [p for p, _ in parts]
            cost = sum(c for _, c in parts)
            return (_all(preds) if isinstance(node, AllOf) else _any(preds)), cost
        case Not():
            inner, cost = _node(node.not_, zone)
            return (lambda f: not inner(f)), cost
        case Condition():
            return _leaf(node, zone), _cost(node)
        case _:
            assert_never(node)


def _cost(cond: Condition) -> int:
    """1: read from the state; 3: a window over a history (two binary searches on a timeline
    read once per customer); 4: the local days of the visits (a step per day)."""
    if cond.field in ORDER_FIELDS:
        lifetime = cond.field in ("orders.count", "orders.value") and not cond.qualifiers()
        return 1 if lifetime else 3
    if cond.field in BEHAVIOUR_FIELDS:
        return 4 if cond.field == "visits.count" else 3
    return 1


def _all(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda f: first(f) and second(f)

    def every(f: Facts) -> bool:
        for p in preds:  # noqa: SIM110 - a loop: no generator per customer (hot path)
            if not p(f):
                return False
        return True

    return every


def _any(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda f: first(f) or second(f)

    def some(f: Facts) -> bool:
        for p in preds:  # noqa: SIM110 - as above
            if p(f):
                return True
        return False

    return some


def _leaf(cond: Condition, zone: ZoneInfo) -> Pred:
    kind = field_type(cond.field)
    assert kind is not None  # validated by the model
    value = parse_value(kind, cond.op, cond.value)
    if kind == "segments":
        ids = [value] if cond.op == "contains" else list(value)
        if len(ids) == 1:
            only = ids[0]
            return lambda f: f.state.in_segment(only, f.now)
        return lambda f: any(f.state.in_segment(s, f.now) for s in ids)
    get = getter(cond, zone, _cap(kind, cond.op, value))
    if cond.op == "exists":
        return lambda f: get(f) is not None
    if kind in ("number", "money", "score", "boolean"):
        return _compare(get, cond.op, value)
    if cond.op == "not_equals":
        equal = _test(kind, "equals", value, zone)
        return lambda f: (v := get(f)) is None or not equal(v, f)
    test = _test(kind, cond.op, value, zone)
    return lambda f: (v := get(f)) is not None and test(v, f)


def _compare(get: Callable[[Facts], Any], op: str, value: Any) -> Pred:
    """An ordered field (a count, an amount, a score, a flag) against the rule's value: the
    commonest leaf, so one closure reads and compares."""
    match op:
        case "equals":
            return lambda f: (v := get(f)) is not None and v == value
        case "not_equals":
            return lambda f: (v := get(f)) is None or v != value
        case "less":
            return lambda f: (v := get(f)) is not None and v < value
        case "greater":
            return lambda f: (v := get(f)) is not None and v > value
        case "between":
            low, high = value
            return lambda f: (v := get(f)) is not None and low <= v <= high
        case "in":
            wanted = set(value)
            return lambda f: (v := get(f)) is not None and v in wanted
    raise AssertionError(op)  # pragma: no cover


def _cap(kind: FieldType, op: str, value: Any) -> int | None:
    """The count past which this rule's answer cannot change (counting may stop there)."""
    if kind != "number" or op == "exists":
        return None
    values = value if isinstance(value, list | tuple) else [value]
    return max(1, int(max(values)) + 1)


def _test(kind: FieldType, op: str, value: Any, zone: ZoneInfo) -> Test:
    """How a present value compares with the rule's value, for one field type."""
    match kind:
        case "text":
            return _text(op, value)
        case "number" | "money" | "score" | "boolean":  # pragma: no cover - see _compare
            raise AssertionError("ordered fields are compared by _compare")
        case "month":
            return _month(op, value, zone)
        case "instant":
            return _instant(op, value, zone)
        case "date":
            return _day(op, value, zone)
        case "attribute":
            return _attribute(op, value)
        case "segments":  # pragma: no cover - handled by _leaf
            raise AssertionError("segments are tested by membership")
        case _:
            assert_never(kind)


def _text(op: str, value: Any) -> Test:
    if op == "in":
        wanted = {v.casefold() for v in value}
        return lambda v, f: str(v).casefold() in wanted
    x = value.casefold()
    if op == "contains":
        return lambda v, f: x in str(v).casefold()
    return lambda v, f: str(v).casefold() == x


def _month(op: str, value: Any, zone: ZoneInfo) -> Test:
    current = per_now(lambda now: now.astimezone(zone).month)

    def month(x: Any, f: Facts) -> int:
        return current(f.now) if x == "current" else int(x)

    match op:
        case "equals":
            return lambda v, f: v == month(value, f)
        case "less":
            return lambda v, f: v < month(value, f)
        case "greater":
            return lambda v, f: v > month(value, f)
        case "between":
            low, high = value
            return lambda v, f: month(low, f) <= v <= month(high, f)
        case "in":
            return lambda v, f: any(v == month(x, f) for x in value)
    raise AssertionError(op)  # pragma: no cover


def _instant(op: str, value: Any, zone: ZoneInfo) -> Test:
    """A moment against whole days in `zone` (or against the last N days before now)."""
    if op == "in_last_days":
        span = timedelta(days=value)
        return lambda v, f: f.now - span <= v <= f.now
    low, high = value if op == "between" else (value, value)
    start, end = day_start(low, zone), day_start(high + timedelta(days=1), zone)
    match op:
        case "equals" | "between":
            return lambda v, f: start <= v < end
        case "before":
            return lambda v, f: v < start
        case "after":
            return lambda v, f: v >= end
    raise AssertionError(op)  # pragma: no cover


def _day(op: str, value: Any, zone: ZoneInfo) -> Test:
    """A calendar day (the birthday) against days."""
    if op == "in_last_days":
        def recent(v: date, f: Facts) -> bool:
            today = f.now.astimezone(zone).date()
            return today - timedelta(days=value) <= v <= today
        return recent
    match op:
        case "equals":
            return lambda v, f: v == value
        case "before":
            return lambda v, f: v < value
        case "after":
            return lambda v, f: v > value
        case "between":
            low, high = value
            return lambda v, f: low <= v <= high
    raise AssertionError(op)  # pragma: no cover


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    try:
        return Decimal(str(v)) if isinstance(v, int | float | str | Decimal) else None
    except InvalidOperation:
        return None


def _same(v: Any, x: Any) -> bool:
    """A custom attribute equals a rule's value: as booleans, numbers, else as text."""
    if isinstance(x, bool) or isinstance(v, bool):
        return v is x or str(v).casefold() == str(x).casefold()
    if isinstance(x, Decimal) and (n := _number(v)) is not None:
        return n == x
    return str(v).casefold() == str(x).casefold()


def _as(v: Any, like: Any) -> Any:
    """Numbers compare as numbers (when the rule's value is one), anything else as text."""
    return _number(v) if isinstance(like, Decimal) else str(v).casefold()


def _attribute(op: str, value: Any) -> Test:
    match op:
        case "equals":
            return lambda v, f: _same(v, value)
        case "in":
            return lambda v, f: any(_same(v, x) for x in value)
        case "contains":
            x = str(value).casefold()
            return lambda v, f: x in str(v).casefold()
        case "less":
            top = _as(value, value)
            return lambda v, f: (a := _as(v, value)) is not None and a < top
        case "greater":
            bottom = _as(value, value)
            return lambda v, f: (a := _as(v, value)) is not None and a > bottom
        case "between":
            low, high = (_as(x, value[0]) for x in value)
            return lambda v, f: (a := _as(v, value[0])) is not None and low <= a <= high
    raise AssertionError(op)  # pragma: no cover
