"""The vocabulary of rule-based segments: every field a rule may test, its type, which operators
and qualifiers fit it, and how a rule's `value` is read.

Declared once, as data, so that the model validates against it, the JSON Schema for editors is
generated from it and `engine.fields` must give every field a way to read it (a test checks).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from difflib import get_close_matches
from typing import Any, Literal, get_args

from .base import FIRST_DAY, LAST_DAY

FieldType = Literal["text", "number", "money", "instant", "date", "month", "score", "boolean",
                    "segments", "attribute"]
Op = Literal["equals", "not_equals", "less", "greater", "between", "in", "contains", "exists",
             "in_last_days", "before", "after"]

_DAYS: tuple[Op, ...] = ("equals", "not_equals", "before", "after", "between", "in_last_days",
                         "exists")
_ORDERED: tuple[Op, ...] = ("equals", "not_equals", "less", "greater", "between", "in", "exists")
OPS: dict[FieldType, tuple[Op, ...]] = {
    "text": ("equals", "not_equals", "contains", "in", "exists"),
    "number": _ORDERED,
    "money": ("equals", "not_equals", "less", "greater", "between", "exists"),
    "instant": _DAYS,  # a moment (an order's time): days are whole days in the segment's zone
    "date": _DAYS,  # a calendar day (the birthday)
    "month": _ORDERED,
    "score": _ORDERED,
    "boolean": ("equals", "not_equals", "exists"),
    "segments": ("contains", "in"),
    "attribute": ("equals", "not_equals", "contains", "less", "greater", "between", "in",
                  "exists"),
}
assert set(OPS) == set(get_args(FieldType))

MAX_LAST_DAYS = 36500  # `in_last_days`: a hundred years at most (dates stay within FIRST_DAY)
ATTRIBUTE = re.compile(r"^attributes\.[A-Za-z0-9_]+$")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")

_PROFILE: dict[str, FieldType] = {
    "email": "text", "phone": "text", "first_name": "text", "last_name": "text",
    "country": "text", "city": "text", "language": "text", "birthday": "date",
    "birthday.month": "month", "registered_at": "instant", "consent.email": "boolean",
    "consent.sms": "boolean", "cart.value": "money", "cart.items": "number",
    "cart.updated": "instant", "segments": "segments", "rfm.r": "score", "rfm.f": "score",
    "rfm.m": "score",
}
ORDER_FIELDS: dict[str, FieldType] = {
    "orders.count": "number", "orders.items": "number", "orders.value": "money",
    "orders.largest": "money", "orders.first": "instant", "orders.last": "instant",
    "orders.in_one_category": "number",
}
# Behaviour fields: the occurrence kinds each counts (a detail-type or a custom event's name).
VIEWS = ("PageVisited", "ProductViewed", "CategoryViewed")
BEHAVIOUR_KINDS: dict[str, tuple[str, ...]] = {
    "visits": VIEWS, "page_views": VIEWS, "recommendation_clicks": ("RecommendationClicked",),
    "emails_opened": ("EmailOpened",), "emails_clicked": ("EmailClicked",),
    "campaigns_seen": ("CampaignViewed",), "carts_abandoned": ("CartAbandoned",),
    "events": (),  # the rule names the event (`event`)
}
BEHAVIOUR_FIELDS: dict[str, FieldType] = {
    f"{group}.{what}": ("number" if what == "count" else "instant")
    for group in BEHAVIOUR_KINDS for what in ("count", "last")
}
FIELDS: dict[str, FieldType] = {**_PROFILE, **ORDER_FIELDS, **BEHAVIOUR_FIELDS}

_WINDOW = "; `time_frame` limits it to a period"
_LINES = _WINDOW + ", `categories` / `products` / `manufacturers` / `discounted` / `promotions` " \
    "to some orders or lines"
_SEEN = {
    "visits": "page, product or category views", "page_views": "page, product or category views",
    "recommendation_clicks": "RecommendationClicked events", "emails_opened": "EmailOpened events",
    "emails_clicked": "EmailClicked events", "campaigns_seen": "CampaignViewed events",
    "carts_abandoned": "carts abandoned (idle a day with items)",
    "events": "events named by `event`",
}
_QUALIFIED = {True: _WINDOW + ", `categories` / `products` to views of some",
              False: _WINDOW + ", `parameters` to those with these parameters"}
DESCRIPTIONS: dict[str, str] = {
    "email": "profile e-mail address", "phone": "profile phone number",
    "first_name": "profile first name", "last_name": "profile last name",
    "country": "profile country, as the shop sends it (e.g. FR)", "city": "profile city",
    "language": "profile language (e.g. fr)", "birthday": "date of birth",
    "birthday.month": "month of birth, 1-12 ('current' = this month)",
    "registered_at": "when the customer registered", "consent.email": "e-mail marketing consent",
    "consent.sms": "SMS marketing consent", "cart.value": "value of the current cart (0: none)",
    "cart.items": "items in the current cart (0: none)", "cart.updated": "last change of the cart",
    "segments": "the segments the customer is in", "rfm.r": "RFM recency score, 5 = most recent",
    "rfm.f": "RFM frequency score, 5 = most orders", "rfm.m": "RFM monetary score, 5 = most spent",
    "orders.count": "number of orders (all time: the lifetime count)" + _LINES,
    "orders.items": "items bought" + _LINES,
    "orders.value": "money spent (all time: the lifetime total)" + _LINES,
    "orders.largest": "the largest order" + _LINES,
    "orders.first": "the first order's time" + _LINES,
    "orders.last": "the last order's time (last purchase)" + _LINES,
    "orders.in_one_category": "the most orders sharing one category" + _LINES,
    **{f"{g}.count": ("distinct days with " if g == "visits" else "number of ") + what
       + _QUALIFIED[g in ("visits", "page_views")] for g, what in _SEEN.items()},
    **{f"{g}.last": "time of the last of the " + what + _QUALIFIED[g in ("visits", "page_views")]
       for g, what in _SEEN.items()},
}
assert set(DESCRIPTIONS) == set(FIELDS)

Qualifier = Literal["time_frame", "categories", "products", "manufacturers", "discounted",
                    "promotions", "parameters", "event"]
_VIEW_FIELDS = [f for f in BEHAVIOUR_FIELDS if f.split(".")[0] in ("visits", "page_views")]
_SIGNALS = [f for f in BEHAVIOUR_FIELDS if f not in _VIEW_FIELDS]
QUALIFIES: dict[Qualifier, tuple[str, ...]] = {
    "time_frame": (*ORDER_FIELDS, *BEHAVIOUR_FIELDS),
    "categories": (*ORDER_FIELDS, *_VIEW_FIELDS),
    "products": (*ORDER_FIELDS, *_VIEW_FIELDS),
    "manufacturers": tuple(ORDER_FIELDS),
    "discounted": tuple(ORDER_FIELDS),
    "promotions": tuple(ORDER_FIELDS),
    "parameters": tuple(_SIGNALS),
    "event": ("events.count", "events.last"),
}


def field_type(name: str) -> FieldType | None:
    """The type of a field, None when there is no such field."""
    if name in FIELDS:
        return FIELDS[name]
    return "attribute" if ATTRIBUTE.match(name) else None


def unknown_field(name: str) -> str:
    close = get_close_matches(name, FIELDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {name!r}{hint}; custom profile fields are 'attributes.<name>'"


def wrong_op(name: str, kind: FieldType, op: str) -> str:
    return (f"operator {op!r} does not fit {name!r}, a {kind} field "
            f"(it takes {', '.join(OPS[kind])})")


def parse_value(kind: FieldType, op: Op, raw: Any) -> Any:
    """A rule's JSON `value` → what the engine compares with; ValueError says what is wrong.

    Numbers become Decimal, days `date`, a month 1-12 or "current"; `in` a list, `between` a
    pair (low, high) with low <= high.
    """
    if op == "exists":
        if raw is not None:
            raise ValueError("'exists' takes no value")
        return None
    if op == "in_last_days":
        if not _is_int(raw) or not 1 <= raw <= MAX_LAST_DAYS:
            raise ValueError(f"'in_last_days' takes a whole number of days, 1 to {MAX_LAST_DAYS:,}")
        return raw
    if op == "in":
        if not isinstance(raw, list) or not raw:
            raise ValueError("'in' takes a non-empty list of values")
        return [_single(kind, v) for v in raw]
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("'between' takes a list of two values [low, high]")
        low, high = _single(kind, raw[0]), _single(kind, raw[1])
        if kind == "attribute" and isinstance(low, Decimal) != isinstance(high, Decimal):
            raise ValueError("'between' takes two numbers or two texts")
        if _comparable(low, high) and low > high:
            raise ValueError("'between': the low value is greater than the high one")
        return (low, high)
    if isinstance(raw, list):
        raise ValueError(f"{op!r} takes a single value, not a list")
    if raw is None:
        raise ValueError(f"{op!r} needs a value")
    return _single(kind, raw)


def _single(kind: FieldType, raw: Any) -> Any:
    match kind:
        case "text":
            if isinstance(raw, str):
                return raw
        case "number" | "money":
            if _is_number(raw):
                return Decimal(str(raw))
        case "instant" | "date":
            if isinstance(raw, str):
                try:
                    day = date.fromisoformat(raw)
                except ValueError:
                    pass
                else:
                    if FIRST_DAY <= day <= LAST_DAY:
                        return day
                    raise ValueError(f"a day between {FIRST_DAY} and {LAST_DAY}, not {raw!r}")
            raise ValueError(f"a {kind} field takes a day as 'YYYY-MM-DD', not {raw!r}")
        case "month":
            if raw == "current" or (_is_int(raw) and 1 <= raw <= 12):
                return raw
            raise ValueError(f"a month is 1-12 or 'current', not {raw!r}")
        case "score":
            if _is_int(raw) and 1 <= raw <= 5:
                return raw
            raise ValueError(f"an RFM score is 1-5, not {raw!r}")
        case "boolean":
            if isinstance(raw, bool):
                return raw
        case "segments":
            if isinstance(raw, str) and ID.match(raw):
                return raw
            raise ValueError(f"a segment id is expected, not {raw!r}")
        case "attribute":
            if isinstance(raw, bool | str):
                return raw
            if _is_number(raw):
                return Decimal(str(raw))
    raise ValueError(f"a {kind} field takes {_EXPECTED[kind]}, not {raw!r}")


_EXPECTED = {"text": "text", "number": "a number", "money": "an amount", "boolean": "true or false",
             "attribute": "text, a number or true/false"}


def _is_int(raw: Any) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool)


def _is_number(raw: Any) -> bool:
    return isinstance(raw, int | float | Decimal) and not isinstance(raw, bool)


def _comparable(a: Any, b: Any) -> bool:
    both_numbers = isinstance(a, Decimal) and isinstance(b, Decimal)
    return both_numbers or type(a) is type(b) and not isinstance(a, bool)
