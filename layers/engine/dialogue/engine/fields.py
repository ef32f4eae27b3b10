"""How each field of `model.segment_fields` is read from a customer's state, at a moment.

A rule is turned into a getter once per catalog (`getter`); a getter reads a `Facts`, the one
customer being evaluated at `now`. What several rules read (the orders of the last 365 days, the
visits of the last 30) is computed once per customer in `Facts.memo`. Windows are judged from
the dated histories at `now`: "the last 30 days" moves with the clock, it is not a counter.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from dialogue.model.customer import CustomerState, LineRecord, Occurrence, OrderRecord
from dialogue.model.matching import TimeFrame
from dialogue.model.segment import Condition
from dialogue.model.segment_fields import BEHAVIOUR_FIELDS, BEHAVIOUR_KINDS, FIELDS, ORDER_FIELDS

from .rfm import RfmBoundaries, scores

Getter = Callable[["Facts"], Any]
Bounds = Callable[[datetime], tuple[datetime | None, datetime | None]]
Selected = list[tuple[OrderRecord, list[LineRecord]]]
TICK, DAY = timedelta(microseconds=1), timedelta(days=1)


class Facts:
    """One customer at `now`; derived data is computed on first use and shared by all rules."""

    __slots__ = ("state", "now", "rfm", "memo", "_scores", "_kinds", "_timelines")

    def __init__(self, state: CustomerState, now: datetime, rfm: RfmBoundaries | None = None):
        self.state, self.now, self.rfm = state, now, rfm
        self.memo: dict[Any, Any] = {}
        self._scores: tuple[int, int, int] | None | bool = False
        self._kinds: list[str] | None = None  # the kind of each occurrence, in order
        self._timelines: dict[tuple[str, ...] | None, tuple[list[datetime], list[Any]]] = {}

    def scores(self) -> tuple[int, int, int] | None:
        if self._scores is False:
            self._scores = scores(self.state, self.rfm, self.now) if self.rfm else None
        return self._scores  # type: ignore[return-value]

    def between(self, kinds: tuple[str, ...] | None, lo: datetime | None,
                hi: datetime | None) -> list[Any]:
        """Orders (kinds None) or occurrences of these kinds in [lo, hi], oldest first: the
        history is sorted once per customer, a window is then two binary searches."""
        timeline = self._timelines.get(kinds)
        if timeline is None:
            history: list[Any] = (self.state.orders if kinds is None
                                  else self._occurrences(kinds))
            items = sorted(history, key=_AT)
            timeline = self._timelines[kinds] = (list(map(_AT, items)), items)
        ats, items = timeline
        start = 0 if lo is None else bisect_left(ats, lo)
        end = len(ats) if hi is None else bisect_right(ats, hi)
        return items[start:end] if start or end < len(ats) else items

    def _occurrences(self, kinds: tuple[str, ...]) -> list[Occurrence]:
        """One pass per set of kinds, keeping the history's (nearly chronological) order; a
        kind the customer never showed is ruled out by a scan in C, without a Python loop."""
        if self._kinds is None:
            self._kinds = list(map(_KIND, self.state.behaviour))
        if not any(k in self._kinds for k in kinds):
            return []
        return [o for o in self.state.behaviour if o.kind in kinds]


_AT, _KIND = attrgetter("at"), attrgetter("kind")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of `day` in `zone`, as a UTC time (UTC times compare fastest)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def bounds(frame: TimeFrame | None, zone: ZoneInfo) -> Bounds | None:
    """The inclusive [low, high] instants of a time frame at `now`; None = any time."""
    if frame is None or frame.kind in ("any_time", "since_activity_start"):
        return None
    lo: datetime | None = None
    hi: datetime | None = None
    match frame.kind:
        case "last_days":
            span = timedelta(days=frame.days or 0)
            return lambda now: (now - span, now)
        case "before":
            hi = day_start(_day(frame.day), zone) - TICK
        case "after":
            lo = day_start(_day(frame.day) + DAY, zone)
        case "on":
            lo, hi = day_start(_day(frame.day), zone), day_start(_day(frame.day) + DAY, zone) - TICK
        case "between":
            lo = day_start(_day(frame.start), zone)
            hi = day_start(_day(frame.end) + DAY, zone) - TICK
    return lambda now: (lo, hi)


def _day(d: date | None) -> date:
    assert d is not None  # the time frame's own validator requires it for its kind
    return d


def getter(cond: Condition, zone: ZoneInfo, cap: int | None = None) -> Getter:
    """The function reading `cond.field` (with its qualifiers) from a customer's facts. A count
    may stop at `cap`, when the rule cannot tell `cap` from any greater count."""
    name = cond.field
    if name in ORDER_FIELDS:
        return _order_getter(cond, zone, cap)
    if name in BEHAVIOUR_FIELDS:
        return _behaviour_getter(cond, zone, cap)
    if name.startswith("attributes."):
        key = name.removeprefix("attributes.")
        return lambda f: _blank(f.state.profile.attributes.get(key))
    if name.startswith("rfm."):
        i = {"r": 0, "f": 1, "m": 2}[name[-1]]
        return lambda f: None if (s := f.scores()) is None else s[i]
    return _PROFILE[name]


def _blank(v: Any) -> Any:
    return None if v == "" else v


def _profile(attr: str) -> Getter:
    return lambda f: _blank(getattr(f.state.profile, attr))


_PROFILE: dict[str, Getter] = {
    **{n: _profile(n) for n in ("email", "phone", "first_name", "last_name", "country", "city",
                                "language", "birthday")},
    "birthday.month": lambda f: b.month if (b := f.state.profile.birthday) else None,
    "registered_at": lambda f: f.state.registered_at,
    "consent.email": lambda f: f.state.consent.email,
    "consent.sms": lambda f: f.state.consent.sms,
    "cart.value": lambda f: f.state.cart.value if f.state.cart else Decimal(0),
    "cart.items": lambda f: sum(ln.quantity for ln in f.state.cart.lines) if f.state.cart else 0,
    "cart.updated": lambda f: f.state.cart.updated_at if f.state.cart else None,
    "segments": lambda f: f.state,
}


# --- orders -------------------------------------------------------------------------------------
def _line_filter(cond: Condition) -> Callable[[LineRecord], bool] | None:
    """One test per qualifier given (categories or products; manufacturers; discounted)."""
    cats = {c.casefold() for c in cond.categories}
    products, discounted = set(cond.products), cond.discounted
    makers = {m.casefold() for m in cond.manufacturers}
    tests: list[Callable[[LineRecord], bool]] = []
    if cats or products:
        tests.append(lambda ln: ln.product_id in products
                     or any(c.casefold() in cats for c in ln.categories))
    if makers:
        tests.append(lambda ln: (ln.manufacturer or "").casefold() in makers)
    if discounted is not None:
        tests.append(lambda ln: ln.discounted is discounted)
    if len(tests) <= 1:
        return tests[0] if tests else None
    return lambda ln: all(test(ln) for test in tests)


def _order_getter(cond: Condition, zone: ZoneInfo, cap: int | None) -> Getter:
    what = cond.field.removeprefix("orders.")
    when, line_ok = bounds(cond.time_frame, zone), _line_filter(cond)
    promos = {p.casefold() for p in cond.promotions}
    lifetime = when is None and line_ok is None and not promos
    key = ("orders", repr(sorted(cond.qualifiers().items())), cond.time_frame and zone.key)

    def select(f: Facts) -> Selected:
        found: Selected | None = f.memo.get(key)
        if found is None:
            orders: list[OrderRecord] = f.between(None, *(when(f.now) if when else (None, None)))
            if promos:
                orders = [o for o in orders
                          if any(p.casefold() in promos for p in o.promotion_codes)]
            if line_ok is None:
                found = [(o, o.lines) for o in orders]
            else:
                found = [(o, lines) for o in orders
                         if (lines := [ln for ln in o.lines if line_ok(ln)])]
            f.memo[key] = found
        return found

    def value(o: OrderRecord, lines: list[LineRecord]) -> Decimal:
        return o.total if line_ok is None else sum((ln.value for ln in lines), Decimal(0))

    match what:
        case "count":
            return (lambda f: f.state.order_count) if lifetime else (lambda f: len(select(f)))
        case "items":
            return lambda f: sum(ln.quantity for _, lines in select(f) for ln in lines)
        case "value":
            if lifetime:
                return lambda f: f.state.total_spent
            return lambda f: sum((value(o, lines) for o, lines in select(f)), Decimal(0))
        case "largest":
            return lambda f: max((value(o, lines) for o, lines in select(f)), default=None)
        case "first":
            return lambda f: found[0][0].at if (found := select(f)) else None
        case "last":
            return lambda f: found[-1][0].at if (found := select(f)) else None
        case "in_one_category":
            wanted = {c.casefold() for c in cond.categories}
            return lambda f: _most_in_one_category(select(f), wanted, cap)
    raise AssertionError(f"no getter for {cond.field!r}")  # pragma: no cover


def _most_in_one_category(selected: Selected, wanted: set[str], cap: int | None) -> int:
    """The most orders that share one category (a category counts once per order; names as
    the shop sends them; `wanted`, when given, keeps those categories only), up to `cap`."""
    tally: dict[str, int] = {}
    for _, lines in selected:
        cats = {c for ln in lines for c in ln.categories}
        for c in cats:
            if not wanted or c.casefold() in wanted:
                n = tally[c] = tally.get(c, 0) + 1
                if n == cap:
                    return n
    return max(tally.values(), default=0)


# --- behaviour ----------------------------------------------------------------------------------
def _occurrence_filter(cond: Condition) -> Callable[[Occurrence], bool] | None:
    cats = {c.casefold() for c in cond.categories}
    products = set(cond.products)
    params = {k: v.casefold() for k, v in cond.parameters.items()}
    if not (cats or products or params):
        return None

    def ok(o: Occurrence) -> bool:
        if (cats or products) and not (o.fields.get("product_id") in products
                                       or any(t.casefold() in cats for t in o.tags)):
            return False
        return all((o.fields.get(k) or "").casefold() == v for k, v in params.items())

    return ok


def _behaviour_getter(cond: Condition, zone: ZoneInfo, cap: int | None) -> Getter:
    group, what = cond.field.split(".")
    kinds = (cond.event or "",) if group == "events" else BEHAVIOUR_KINDS[group]
    when, keep = bounds(cond.time_frame, zone), _occurrence_filter(cond)
    quals = {q: v for q, v in cond.qualifiers().items() if q != "event"}
    key = ("behaviour", kinds, repr(sorted(quals.items())), cond.time_frame and zone.key)

    def select(f: Facts) -> list[Occurrence]:
        found: list[Occurrence] | None = f.memo.get(key)
        if found is None:
            found = f.between(kinds, *(when(f.now) if when else (None, None)))
            if keep is not None:
                found = [o for o in found if keep(o)]
            f.memo[key] = found
        return found

    if what == "last":
        return lambda f: found[-1].at if (found := select(f)) else None
    if group == "visits":
        return lambda f: distinct_days(select(f), zone, cap)
    return lambda f: len(select(f))


def distinct_days(occurrences: list[Occurrence], zone: ZoneInfo, cap: int | None = None) -> int:
    """How many local days these (time-ordered) occurrences fall on, counting no further than
    `cap`: one time-zone conversion per day, not per occurrence."""
    days, day_end = 0, None
    for o in occurrences:
        if day_end is None or o.at >= day_end:
            if days == cap:
                break
            day_end = day_start(o.at.astimezone(zone).date() + DAY, zone)
            days += 1
    return days


assert set(_PROFILE) | set(ORDER_FIELDS) | set(BEHAVIOUR_FIELDS) | {"rfm.r", "rfm.f", "rfm.m"} \
    == set(FIELDS), "every field of the registry needs a getter"
