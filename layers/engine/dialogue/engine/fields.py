"""How each field of `model.segment_fields` is read from a customer's state, at a moment.

A rule is turned into a getter once per catalog (`getter`); a getter reads a `Facts`, the one
customer being evaluated at `now`. Windows are judged from the dated histories at `now`: "the
last 30 days" moves with the clock, it is not a counter.

Every rule segment is evaluated for every customer each day, so a history is read once per
customer into a `Timeline`: oldest first (checked in one pass, sorted only if stored out of
order), each instant as a naive UTC datetime. Parsed datetimes each carry a tzinfo object of
their own, and comparing two of them costs two `utcoffset` calls (~0.3 µs); naive ones compare in
a few ns. A window is then two binary searches, and a count of some kinds `list.count` over the
window's slice of kinds: no Python loop per occurrence, except where a rule looks into the
occurrences' fields or counts the visits' days (a step per day). What several rules read (the
orders of the last 365 days with some category) is computed once per customer in `Facts.memo`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import chain, compress, repeat
from operator import attrgetter, sub
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from dialogue.model.customer import CustomerState, LineRecord, Occurrence, OrderRecord
from dialogue.model.matching import TimeFrame
from dialogue.model.segment import Condition
from dialogue.model.segment_fields import BEHAVIOUR_FIELDS, BEHAVIOUR_KINDS, FIELDS, ORDER_FIELDS

from .rfm import RfmBoundaries, scores

Getter = Callable[["Facts"], Any]
T = TypeVar("T")
Window = tuple[datetime | None, datetime | None]  # inclusive `utc` keys; None: unbounded
Bounds = Callable[[datetime], Window]
Selected = list[tuple[OrderRecord, list[LineRecord]]]
TICK, DAY, _ZERO = timedelta(microseconds=1), timedelta(days=1), timedelta(0)
TABLED_DAYS = 400  # windows up to this long count days with a table of their midnights
_AT, _KIND, _ZONE = attrgetter("at"), attrgetter("kind"), attrgetter("tzinfo")
_BASETYPE = 1 << 10  # Py_TPFLAGS_BASETYPE: the class can be subclassed
_LINES, _CATEGORIES = attrgetter("lines"), attrgetter("categories")
_DISCOUNTED: Callable[[LineRecord], bool] = attrgetter("discounted")  # a test in C


def utc(at: datetime) -> datetime:
    """An aware `at` as a naive UTC datetime: the keys of a `Timeline` and of the windows."""
    return at.astimezone(UTC).replace(tzinfo=None)


def utc_keys(ats: list[datetime]) -> list[datetime]:
    """`utc` of each instant, in C loops: wall times less offsets. Parsed datetimes each carry a
    tzinfo of their own; their offsets come from one call each of their class's `utcoffset` (what
    `datetime.utcoffset` calls, without its lookup by name). A naive instant counts as UTC."""
    if not ats:
        return []
    walls = list(map(datetime.combine, ats, map(datetime.time, ats)))
    offsets = _offsets(ats, type(ats[0].tzinfo))
    if offsets.count(offsets[0]) < len(offsets):
        return list(map(sub, walls, offsets))
    return list(map(sub, walls, repeat(offsets[0]))) if offsets[0] else walls


def _offsets(ats: list[datetime], kind: type[Any]) -> list[timedelta]:
    """Each instant's UTC offset. When they all have a tzinfo of the class `kind`, that class's
    `utcoffset` is called directly; one that cannot be subclassed (pydantic's TzInfo,
    datetime.timezone) needs no look at the types: the call raises for a tzinfo of another."""
    if kind is not type(None):
        if not kind.__flags__ & _BASETYPE:
            try:
                return list(map(kind.utcoffset, map(_ZONE, ats), ats))
            except TypeError:
                pass
        else:
            zones = list(map(_ZONE, ats))
            if list(map(type, zones)).count(kind) == len(zones):
                return list(map(kind.utcoffset, zones, ats))
    return [offset or _ZERO for offset in map(datetime.utcoffset, ats)]  # naive: as UTC


class Timeline:
    """A history oldest first (`items`), their instants as `utc` keys and, for behaviour, their
    kinds. Histories are kept in time order as they are recorded; one stored out of order is
    sorted here, stably (equal instants stay in the order they came)."""

    __slots__ = ("items", "keys", "kinds")

    def __init__(self, history: list[Any], kinds: bool = False):
        ats = list(map(_AT, history))
        seen = list(map(_KIND, history)) if kinds else []  # while the items are in the cache
        keys = utc_keys(ats)
        if keys != sorted(keys):
            order = sorted(range(len(keys)), key=keys.__getitem__)
            history, keys = [history[i] for i in order], [keys[i] for i in order]
            seen = [seen[i] for i in order] if kinds else []
        self.items, self.keys, self.kinds = history, keys, seen

    def span(self, window: Window) -> tuple[int, int]:
        """[start, end): the items within the window."""
        keys, (lo, hi) = self.keys, window
        return (0 if lo is None else bisect_left(keys, lo),
                len(keys) if hi is None else bisect_right(keys, hi))


_NONE = Timeline([])  # of an empty history: never changed
ALWAYS: Window = (None, None)


class Facts:
    """One customer at `now`; derived data is computed on first use and shared by all rules."""

    __slots__ = ("state", "now", "rfm", "memo", "_scores", "_behaviour", "_orders")

    def __init__(self, state: CustomerState, now: datetime, rfm: RfmBoundaries | None = None):
        self.state, self.now, self.rfm = state, now, rfm
        self.memo: dict[Any, Any] = {}
        self._scores: tuple[int, int, int] | None | bool = False
        self._behaviour: Timeline | None = None
        self._orders: Timeline | None = None

    def scores(self) -> tuple[int, int, int] | None:
        if self._scores is False:
            self._scores = scores(self.state, self.rfm, self.now) if self.rfm else None
        return self._scores  # type: ignore[return-value]

    def behaviour(self) -> Timeline:
        found = self._behaviour
        if found is None:
            history = self.state.behaviour
            found = self._behaviour = Timeline(history, kinds=True) if history else _NONE
        return found

    def orders(self) -> Timeline:
        found = self._orders
        if found is None:
            history = self.state.orders
            found = self._orders = Timeline(history) if history else _NONE
        return found


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of `day` in `zone`, as a UTC time (UTC times compare fastest)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def bounds(frame: TimeFrame | None, zone: ZoneInfo) -> Bounds | None:
    """The inclusive [low, high] `utc` keys of a time frame at `now`; None = any time."""
    if frame is None or frame.kind in ("any_time", "since_activity_start"):
        return None
    lo: datetime | None = None
    hi: datetime | None = None
    match frame.kind:
        case "last_days":
            span = timedelta(days=frame.days or 0)
            return per_now(lambda now: (utc(now - span), utc(now)))
        case "before":
            hi = day_start(_day(frame.day), zone) - TICK
        case "after":
            lo = day_start(_day(frame.day) + DAY, zone)
        case "on":
            lo, hi = day_start(_day(frame.day), zone), day_start(_day(frame.day) + DAY, zone) - TICK
        case "between":
            lo = day_start(_day(frame.start), zone)
            hi = day_start(_day(frame.end) + DAY, zone) - TICK
    window = (None if lo is None else utc(lo), None if hi is None else utc(hi))
    return lambda now: window


def per_now(compute: Callable[[datetime], T]) -> Callable[[datetime], T]:
    """`compute(now)`, done once per `now` (a daily run checks a page of customers at the same
    moment); one tuple swapped in a cell, so that threads sharing it stay right."""
    cell: list[tuple[datetime | None, Any]] = [(None, None)]

    def at(now: datetime) -> T:
        seen, found = cell[0]
        if seen is not now:
            found = compute(now)
            cell[0] = (now, found)
        return found  # type: ignore[no-any-return]

    return at


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


def _part(seq: list[Any], start: int, end: int) -> list[Any]:
    return seq if start == 0 and end == len(seq) else seq[start:end]


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
        tests.append(_DISCOUNTED if discounted else lambda ln: not ln.discounted)
    if len(tests) <= 1:
        return tests[0] if tests else None
    return lambda ln: all(test(ln) for test in tests)


def _order_getter(cond: Condition, zone: ZoneInfo, cap: int | None) -> Getter:
    what = cond.field.removeprefix("orders.")
    frame, line_ok = bounds(cond.time_frame, zone), _line_filter(cond)
    when = frame or _always
    promos = {p.casefold() for p in cond.promotions}
    whole = line_ok is None and not promos  # every order of the window, whole
    key = ("orders", repr(sorted(cond.qualifiers().items())), cond.time_frame and zone.key)

    def in_window(f: Facts) -> list[OrderRecord]:
        timeline = f._orders or f.orders()
        return _part(timeline.items, *timeline.span(when(f.now)))

    def select(f: Facts) -> Selected:
        """The orders of the window and their lines, as far as the qualifiers keep them."""
        if whole:
            return [(o, o.lines) for o in in_window(f)]
        found: Selected | None = f.memo.get(key)
        if found is None:
            orders = in_window(f)
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

    def count(f: Facts) -> int:  # of whole orders: two binary searches
        keys = (f._orders or f.orders()).keys
        lo, hi = when(f.now)
        return ((len(keys) if hi is None else bisect_right(keys, hi))
                - (0 if lo is None else bisect_left(keys, lo)))

    def count_kept(f: Facts) -> int:  # orders the qualifiers keep, up to cap
        orders = in_window(f)
        if promos:
            orders = [o for o in orders if any(p.casefold() in promos for p in o.promotion_codes)]
        if line_ok is None:
            return len(orders)
        if cap == 1:  # "none" or "some": one line kept answers
            return 1 if any(map(line_ok, chain.from_iterable(map(_LINES, orders)))) else 0
        return sum(1 for o in orders if any(map(line_ok, o.lines)))

    def end(f: Facts) -> datetime | None:  # first or last of whole orders
        timeline = f._orders or f.orders()
        start, stop = timeline.span(when(f.now))
        return None if start == stop else timeline.items[stop - 1 if what == "last" else start].at

    lifetime = whole and frame is None
    match what:
        case "count":
            if lifetime:
                return lambda f: f.state.order_count  # lifetime, beyond the bounded list
            return count if whole else count_kept
        case "items":
            return lambda f: sum(ln.quantity for _, lines in select(f) for ln in lines)
        case "value":
            if lifetime:
                return lambda f: f.state.total_spent
            return lambda f: sum((value(o, lines) for o, lines in select(f)), Decimal(0))
        case "largest":
            return lambda f: max((value(o, lines) for o, lines in select(f)), default=None)
        case "first" | "last" if whole:
            return end
        case "first":
            return lambda f: found[0][0].at if (found := select(f)) else None
        case "last":
            return lambda f: found[-1][0].at if (found := select(f)) else None
        case "in_one_category":
            wanted = {c.casefold() for c in cond.categories}
            if whole:
                return lambda f: _most_in_one_category(map(_LINES, in_window(f)), wanted, cap)
            return lambda f: _most_in_one_category((ls for _, ls in select(f)), wanted, cap)
    raise AssertionError(f"no getter for {cond.field!r}")  # pragma: no cover


def _most_in_one_category(orders: Iterable[list[LineRecord]], wanted: set[str],
                          cap: int | None) -> int:
    """The most orders that share one category (a category counts once per order; names as
    the shop sends them; `wanted`, when given, keeps those categories only), up to `cap`."""
    tally: dict[str, int] = {}
    for lines in orders:
        cats = set(chain.from_iterable(map(_CATEGORIES, lines)))
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
    kinds = tuple(dict.fromkeys((cond.event or "",) if group == "events"
                                else BEHAVIOUR_KINDS[group]))
    when, keep = bounds(cond.time_frame, zone) or _always, _occurrence_filter(cond)
    wanted = frozenset(kinds)
    quals = {q: v for q, v in cond.qualifiers().items() if q != "event"}
    key = ("behaviour", kinds, repr(sorted(quals.items())), cond.time_frame and zone.key)

    def kept(f: Facts) -> tuple[Timeline, list[int]]:
        """The indices of the occurrences of these kinds in the window that the qualifiers
        keep (categories, products, parameters): a look at each, shared by the rules."""
        timeline = f._behaviour or f.behaviour()
        found: list[int] | None = f.memo.get(key)
        if found is None:
            kinds_in, items, ok = timeline.kinds, timeline.items, keep or _any
            found = f.memo[key] = [i for i in range(*timeline.span(when(f.now)))
                                   if kinds_in[i] in wanted and ok(items[i])]
        return timeline, found

    def last_kept(f: Facts) -> datetime | None:
        timeline, found = kept(f)
        return timeline.items[found[-1]].at if found else None

    def days_kept(f: Facts) -> int:
        timeline, found = kept(f)
        return distinct_days([timeline.keys[i] for i in found], zone, cap,
                             _starts(when(f.now), zone))

    def last(f: Facts) -> datetime | None:
        timeline = f._behaviour or f.behaviour()
        start, end = timeline.span(when(f.now))
        i = _last_index(timeline.kinds, kinds, start, end)
        return None if i is None else timeline.items[i].at

    def count(f: Facts) -> int:  # two binary searches, then a count in C
        timeline = f._behaviour or f.behaviour()
        start, end = timeline.span(when(f.now))
        seen = timeline.kinds[start:end]
        if cap == 1:  # "none" or "some": the first one found answers
            return 1 if _some(seen, kinds) else 0
        return _count(seen, kinds)

    def days(f: Facts) -> int:
        timeline = f._behaviour or f.behaviour()
        window = when(f.now)
        start, end = timeline.span(window)
        seen = timeline.kinds[start:end]
        if cap == 1:  # "none" or "some"
            return 1 if _some(seen, kinds) else 0
        n = _count(seen, kinds)
        if n <= 1:
            return n
        keys = timeline.keys[start:end]
        if n < len(seen):
            keys = list(compress(keys, map(wanted.__contains__, seen)))
        return distinct_days(keys, zone, cap, _starts(window, zone))

    if keep is not None:
        return (last_kept if what == "last" else days_kept if group == "visits"
                else lambda f: len(kept(f)[1]))
    return last if what == "last" else days if group == "visits" else count


def _always(now: datetime) -> Window:
    return ALWAYS


def _any(o: Occurrence) -> bool:
    return True


def _some(kinds_in: list[str], kinds: tuple[str, ...]) -> bool:
    """Is there one of these kinds (a scan in C, up to the first found)?"""
    for kind in kinds:  # noqa: SIM110 - a loop: no generator (hot path)
        if kind in kinds_in:
            return True
    return False


def _count(kinds_in: list[str], kinds: tuple[str, ...]) -> int:
    """How many of these kinds (each scanned for in C)."""
    return kinds_in.count(kinds[0]) if len(kinds) == 1 else sum(map(kinds_in.count, kinds))


def _last_index(kinds_in: list[str], kinds: tuple[str, ...], start: int, end: int) -> int | None:
    """The index of the last occurrence of these kinds in [start, end), None if none."""
    back = kinds_in[start:end]
    back.reverse()
    found = [back.index(k) for k in kinds if k in back]
    return end - 1 - min(found) if found else None


def distinct_days(keys: Sequence[datetime], zone: ZoneInfo, cap: int | None = None,
                  starts: Sequence[datetime] | None = None) -> int:
    """How many local days these instants (sorted `utc` keys) fall on, counting no further
    than `cap`: a binary search to the first instant of the next day, one step per day.
    `starts`: the `midnights` of the keys' window when known, else each day's end is computed."""
    days, i = 0, 0
    while i < len(keys) and days != cap:
        days += 1
        if starts is None:
            local = keys[i].replace(tzinfo=UTC).astimezone(zone).date()
            i = bisect_left(keys, utc(day_start(local + DAY, zone)), i + 1)
        elif (j := bisect_right(starts, keys[i])) < len(starts):
            i = bisect_left(keys, starts[j], i + 1)
        else:
            break  # the rest is on the window's last day
    return days


def _starts(window: Window | None, zone: ZoneInfo) -> Sequence[datetime] | None:
    lo, hi = window or (None, None)
    if lo is None or hi is None or hi - lo > timedelta(days=TABLED_DAYS):
        return None
    return midnights(zone, lo, hi)


@lru_cache(maxsize=256)
def midnights(zone: ZoneInfo, lo: datetime, hi: datetime) -> tuple[datetime, ...]:
    """The `utc` keys of the local midnights in (lo, hi] (a window: computed once per `now`)."""
    day = lo.replace(tzinfo=UTC).astimezone(zone).date() + DAY
    found = []
    while (start := utc(day_start(day, zone))) <= hi:
        found.append(start)
        day += DAY
    return tuple(found)


assert set(_PROFILE) | set(ORDER_FIELDS) | set(BEHAVIOUR_FIELDS) | {"rfm.r", "rfm.f", "rfm.m"} \
    == set(FIELDS), "every field of the registry needs a getter"
