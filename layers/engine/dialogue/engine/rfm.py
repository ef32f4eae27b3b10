"""RFM: recency, frequency and monetary value, each scored 1-5 by quintile over the customer base.

Why histograms. Quintiles need the whole base's distribution, and the daily run may read at most
0.25 read units per customer: its one scan of the customer table already spends most of that, so
a second scan to rank customers before refreshing the segments would double the bill. Instead,
each customer sits in one *bin* per measure (`rfm_bins`): recency = the local day of the last
order, frequency = the number of orders, monetary = the total spent on a log scale of ~2 % steps.
Whoever writes a customer adds `rfm_delta(before, after)` (+1 to the new bins, -1 to the old
ones; nothing when they are unchanged, i.e. for every event but orders) to a sharded counter
item; the daily run merges the shards (a few items, whatever the base's size), turns the merged
histogram into cut points (`boundaries`) and scores each customer as it scans them (`scores`).
A bin never straddles a cut, so customers that tie (same day, same count, same 2 % band) always
get the same score. Customers without orders have no bins and no scores.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal

from dialogue.model.customer import CustomerState

STEP = 1.02  # monetary bins: each ~2 % wider than the one below
_LOG_STEP = math.log(STEP)
MEASURES = ("r", "f", "m")


@dataclass(frozen=True)
class RfmBoundaries:
    """The four cut points per measure (bins at or below cut k score k or less), with the zone
    the recency days were taken in. Empty cuts (no customer has ordered) mean no scores."""

    recency: tuple[date, ...] = ()
    frequency: tuple[int, ...] = ()
    monetary: tuple[int, ...] = ()
    customers: int = 0
    zone: tzinfo = UTC


def money_bin(total: Decimal) -> int:
    """0 below 1 (€); else 1 + floor(log_1.02(total)): bin b holds [1.02^(b-1), 1.02^b)."""
    if total < 1:
        return 0
    return math.floor(math.log(float(total)) / _LOG_STEP) + 1


def _values(state: CustomerState, zone: tzinfo) -> tuple[date, int, int] | None:
    if not state.orders or state.order_count <= 0:
        return None
    last = state.orders[-1].at.astimezone(zone).date()  # histories are kept oldest first
    return last, state.order_count, money_bin(state.total_spent)


def rfm_bins(state: CustomerState, zone: tzinfo = UTC) -> dict[str, str] | None:
    """{"r": "r_2026-11-24", "f": "f_3", "m": "m_349"}: the histogram bins this customer is
    counted in (names usable as DynamoDB attribute names); None without orders."""
    values = _values(state, zone)
    if values is None:
        return None
    last, count, money = values
    return {"r": f"r_{last.isoformat()}", "f": f"f_{count}", "m": f"m_{money}"}


def rfm_delta(before: CustomerState, after: CustomerState,
              zone: tzinfo = UTC) -> dict[str, int]:
    """Bin name → +1 / -1 to add to the histogram for this change of state; {} if none."""
    if before.order_count == after.order_count and before.total_spent == after.total_spent:
        return {}  # no order came: no bin can move (every event pays this check, not the bins)
    old, new = rfm_bins(before, zone) or {}, rfm_bins(after, zone) or {}
    delta: dict[str, int] = {}
    for measure in MEASURES:
        was, now = old.get(measure), new.get(measure)
        if was != now:
            if was is not None:
                delta[was] = delta.get(was, 0) - 1
            if now is not None:
                delta[now] = delta.get(now, 0) + 1
    return delta


def _sort_key(measure: str, rest: str) -> date | int:
    return date.fromisoformat(rest) if measure == "r" else int(rest)


def boundaries(histogram: dict[str, int], zone: tzinfo = UTC) -> RfmBoundaries:
    """Quintile cut points from a merged histogram: cut k is the bin holding the customer of
    rank ceil(k·N/5) in ascending order. Unknown names and empty bins are ignored."""
    cuts: dict[str, tuple[date | int, ...]] = {}
    total = 0
    for measure in MEASURES:
        bins = []
        for name, count in histogram.items():
            prefix, _, rest = name.partition("_")
            if prefix == measure and count > 0:
                bins.append((_sort_key(measure, rest), count))
        bins.sort()
        n = sum(count for _, count in bins)
        total = max(total, n)
        ranks = [math.ceil(k * n / 5) for k in range(1, 5)]
        found: list[date | int] = []
        seen = 0
        for key, count in bins:
            seen += count
            while len(found) < len(ranks) and seen >= ranks[len(found)]:
                found.append(key)
        cuts[measure] = tuple(found) if n else ()
    return RfmBoundaries(recency=cuts["r"], frequency=cuts["f"],  # type: ignore[arg-type]
                         monetary=cuts["m"], customers=total, zone=zone)  # type: ignore[arg-type]


def scores(state: CustomerState, bounds: RfmBoundaries,
           now: datetime) -> tuple[int, int, int] | None:
    """(R, F, M), each 1-5; 5 = most recent / most frequent / highest value. A last order dated
    after `now` (a shop clock ahead of ours) counts as today. None without orders or cuts."""
    values = _values(state, bounds.zone)
    if values is None or not bounds.recency:
        return None
    last, count, money = values
    last = min(last, now.astimezone(bounds.zone).date())
    return (1 + bisect_left(bounds.recency, last), 1 + bisect_left(bounds.frequency, count),
            1 + bisect_left(bounds.monetary, money))  # 1 + the number of cuts below
