"""Rule-based segments, RFM and their validation: the pure core, no AWS.

The shipped segments are checked against a synthetic customer base built here, whose expected
members follow from how it is built (RFM levels, extra orders, behaviour), not from the engine.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue.engine.catalog import Catalog
from dialogue.engine.record import record
from dialogue.engine.rfm import boundaries, money_bin, rfm_bins, rfm_delta, scores
from dialogue.engine.segment_checks import check_segments
from dialogue.engine.segments import (
    EXPIRED,
    RfmBoundaries,
    evaluate,
    note_abandoned_cart,
    refresh,
    rule_order,
)
from dialogue.local.cli import schema
from dialogue.model.customer import (
    CartState,
    ConsentState,
    CustomerState,
    LineRecord,
    Membership,
    Occurrence,
    OrderRecord,
)
from dialogue.model.events import Profile
from dialogue.model.segment import Segment
from dialogue.model.segment_fields import FIELDS

from tests.unit.conftest import event

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)  # during the shipped "current" summer sale
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "segments"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def order(at: datetime, total: float = 50, categories: tuple[str, ...] = ("Main",),
          discounted: bool = False, ident: str = "") -> OrderRecord:
    line = LineRecord(product_id="p-" + categories[0], categories=list(categories), quantity=1,
                      value=Decimal(str(total)), discounted=discounted)
    oid = ident or f"o-{at.isoformat()}-{categories[0]}"
    return OrderRecord(order_id=oid, at=at, total=Decimal(str(total)),
                       lines=[line])


def seen(kind: str, at: datetime, tags: tuple[str, ...] = (), **fields: str) -> Occurrence:
    return Occurrence(at=at, kind=kind, fields=fields, tags=list(tags))


def visits(days: list[float]) -> list[Occurrence]:
    return [seen("PageVisited", ago(d), url="/") for d in days]


def segment(rule: dict[str, Any], ident: str = "s", **props: Any) -> Segment:
    return Segment.model_validate({"id": ident, "name": ident, "kind": "rule",
                                   "time_zone": "Europe/Paris", "rule": rule, **props})


def holds(rule: dict[str, Any], state: CustomerState, now: datetime = NOW,
          rfm: RfmBoundaries | None = None) -> bool:
    return evaluate(segment(rule), state, now, rfm)


# --- the synthetic customer base ---------------------------------------------------------------
R_DAYS = {1: 400, 2: 200, 3: 100, 4: 40, 5: 5}  # last order, days before NOW
M_SPENT = {1: 20, 2: 80, 3: 200, 4: 600, 5: 2000}


@dataclass
class Base:
    states: list[CustomerState] = field(default_factory=list)
    expected: dict[str, set[str]] = field(default_factory=dict)

    def add(self, state: CustomerState, *segments: str) -> None:
        self.states.append(state)
        for s in segments:
            self.expected.setdefault(s, set()).add(state.subject)


def rfm_customer(i: int, base: Base) -> None:
    """250 buyers: R, F and M levels each cycle so that every level holds exactly 50 of them,
    hence the quintile scores are the levels. Extra older orders and behaviour for some of them
    put them in the other segments without moving their RFM bins."""
    r, f, m = i % 5 + 1, (i // 5) % 5 + 1, (i // 25) % 5 + 1
    orders = [order(ago(R_DAYS[r]), M_SPENT[m] / f)]
    behaviour: list[Occurrence] = []
    cart = None
    segs = set()
    if r >= 4 and f >= 4:
        segs.add("loyal-buyers")
    if m <= 2 and f >= 4:
        segs.add("bargain-hunters")
    if m >= 4 and f <= 2:
        segs.add("big-occasional-spenders")
    if m == 5 and f >= 4:
        segs.add("high-value")
    if r == 5:  # 5 days ago: inside the summer sale
        segs.add("current-sale-buyers")
    old_enough = r >= 2  # older orders added below stay older than the last one
    if i % 7 == 0 and old_enough:
        orders.insert(0, order(datetime(2025, 7, 1, 10, tzinfo=UTC), 30, ("Summer",)))
        segs.add("last-summer-sale-buyers")
    if i % 6 == 1 and old_enough:
        orders.insert(0, order(ago(300), 15, ("Outlet",), discounted=True))
        segs.add("discount-buyers")
    if i % 4 == 2 and old_enough:
        orders[:0] = [order(ago(260), 40, ("Ski",)), order(ago(250), 45, ("Ski", "Boots"))]
        segs.add("repeat-category-buyers")
    visited = i % 9 == 3 or i % 13 == 0
    engaged = visited or i % 11 == 5
    if i % 9 == 3:
        behaviour += visits([10])
    if i % 11 == 5:
        behaviour.append(seen("EmailOpened", ago(20), campaign="july"))
    if i % 13 == 0:
        behaviour += visits([d + 0.1 for d in range(1, 13)])  # 12 distinct days
        if r <= 4:  # no order in the last 30 days
            segs.add("undecided")
    if i % 17 == 4:
        behaviour.append(seen("RecommendationClicked", ago(3), product_id="p1"))
        if r <= 4:
            segs.add("recommendation-clickers")
    if i % 19 == 0:  # left a cart during the sale; bought during the sale only if r == 5
        cart = CartState(cart_id=f"cart-{i}", updated_at=datetime(2026, 7, 6, 9, tzinfo=UTC),
                         lines=[LineRecord(product_id="p9", quantity=2, value=Decimal(60))])
        if r <= 4:
            segs.add("sale-cart-abandoners")
    if r <= 3 and not engaged:
        segs.add("churn-risk")
        if "high-value" in segs:
            segs.add("high-value-at-risk")
    if m >= 4 and not visited:
        segs.add("big-spenders-gone-quiet")
    state = CustomerState(subject=f"customer:c{i:03d}", orders=orders, order_count=f,
                          total_spent=Decimal(M_SPENT[m]), behaviour=behaviour, cart=cart,
                          profile=Profile(country="FR", birthday=date(1980, 3, 3)))
    base.add(state, *segs)


def build_base() -> Base:
    base = Base()
    for i in range(250):
        rfm_customer(i, base)

    def nobody(name: str, **kw: Any) -> CustomerState:
        return CustomerState(subject=name, **kw)

    for n in range(6):  # undecided visitors, a guest among them
        subject = "guest:p-u" if n == 0 else f"customer:u{n}"
        base.add(nobody(subject, behaviour=visits([d + 0.5 for d in range(10 + n)])), "undecided")
    base.add(nobody("customer:u-nine-days", behaviour=visits(list(range(1, 10)))))
    base.add(nobody("customer:u-one-day-often", behaviour=visits([1.01 * k / 100
                                                                  for k in range(30)])))
    base.add(nobody("customer:u-too-old", behaviour=visits([d + 31 for d in range(12)])))
    for n in range(4):
        base.add(nobody(f"customer:rc{n}", behaviour=[seen("RecommendationClicked", ago(2))]),
                 "recommendation-clickers")
    base.add(nobody("customer:rc-31-days",
                    behaviour=[seen("RecommendationClicked", ago(31))]))
    for n in range(3):
        base.add(nobody(f"customer:cv{n}", behaviour=[seen("CampaignViewed", ago(10),
                                                           campaign="summer")]),
                 "campaign-seen-no-purchase")
    base.add(nobody("customer:cv-old", behaviour=[seen("CampaignViewed", ago(45))]))

    def cart(updated: datetime, lines: int = 1) -> CartState:
        return CartState(cart_id=f"k-{updated.isoformat()}", updated_at=updated,
                         lines=[LineRecord(product_id="p", quantity=1, value=Decimal(9))] * lines)

    for n in range(3):
        base.add(nobody(f"customer:ca{n}", cart=cart(datetime(2026, 7, 1 + n, 8, tzinfo=UTC))),
                 "sale-cart-abandoners")
    base.add(nobody("customer:ca-fresh", cart=cart(ago(0.5))))
    base.add(nobody("customer:ca-empty", cart=cart(ago(3), lines=0)))
    base.add(nobody("customer:ca-before-sale", cart=cart(datetime(2026, 6, 20, tzinfo=UTC))))
    base.add(nobody("customer:ca-no-tracking", cart=cart(ago(3)),
                    consent=ConsentState(tracking=False)))
    for n in range(4):
        base.add(nobody(f"customer:b{n}", profile=Profile(birthday=date(1990, 7, 1 + 9 * n))),
                 "birthday-this-month")
    base.add(nobody("customer:b-june-30", profile=Profile(birthday=date(1990, 6, 30))))
    for n, country in enumerate(["DE", "de"]):
        base.add(nobody(f"customer:de{n}", profile=Profile(country=country)), "country-de")
    base.add(nobody("customer:at", profile=Profile(country="AT")))
    return base


def shipped() -> tuple[dict[str, Segment], list[Any]]:
    files = sorted(EXAMPLES.glob("*.json"))
    return check_segments([(str(f), f.read_text(encoding="utf-8")) for f in files])


def histogram(states: list[CustomerState], zone: ZoneInfo = PARIS) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for state in states:
        counts.update((rfm_bins(state, zone) or {}).values())
    return dict(counts)


def test_the_shipped_segments_are_valid_and_each_has_a_name_and_a_description():
    segments, problems = shipped()

    assert problems == []
    assert all(s.name and len(s.description) > 40 for s in segments.values())
    assert sum(s.kind == "rule" for s in segments.values()) == 17


def test_every_shipped_rule_segment_holds_exactly_its_expected_members():
    segments, _ = shipped()
    catalog = Catalog(segments=segments.values())
    base = build_base()
    rfm = boundaries(histogram(base.states), PARIS)
    members: dict[str, set[str]] = {}
    for state in base.states:
        refresh(state, catalog, NOW, rfm)
        for seg_id, membership in state.segments.items():
            if membership.active(NOW):
                members.setdefault(seg_id, set()).add(state.subject)

    rules = [s.id for s in segments.values() if s.kind == "rule"]
    assert set(base.expected) == set(rules)  # the base exercises every shipped rule segment
    for seg_id in rules:
        expected = base.expected[seg_id]
        assert 0 < len(expected) < len(base.states)
        assert members.get(seg_id, set()) == expected, seg_id


# --- RFM ----------------------------------------------------------------------------------------
def test_rfm_scores_are_quintiles_spread_over_1_to_5():
    base = build_base()
    rfm = boundaries(histogram(base.states), PARIS)
    spread = Counter(scores(s, rfm, NOW) for s in base.states if s.orders)

    for measure in range(3):
        per_score = Counter()
        for triple, n in spread.items():
            per_score[triple[measure]] += n  # type: ignore[index]
        assert per_score == {1: 50, 2: 50, 3: 50, 4: 50, 5: 50}
    assert rfm.customers == 250


def test_customers_without_orders_have_no_bins_and_no_scores():
    rfm = boundaries({"f_1": 3, "f_2": 2, "r_2026-07-01": 5, "m_10": 5})
    nobody = CustomerState(subject="customer:x")

    assert rfm_bins(nobody) is None
    assert scores(nobody, rfm, NOW) is None
    assert scores(CustomerState(subject="customer:y", orders=[order(ago(1))], order_count=1),
                  RfmBoundaries(), NOW) is None


def test_customers_tied_in_one_bin_get_the_same_score():
    counts = [1, 1, 1, 1, 1, 1, 2, 2, 3, 4]  # rank cuts at 2, 4, 6, 8: inside the six 1s
    states = [CustomerState(subject=f"customer:{i}", orders=[order(ago(i + 1))],
                            order_count=n, total_spent=Decimal(10)) for i, n in enumerate(counts)]
    rfm = boundaries(histogram(states))

    assert [scores(s, rfm, NOW)[1] for s in states] == [1] * 6 + [4, 4, 5, 5]  # type: ignore[index]
    assert {scores(s, rfm, NOW)[2] for s in states} == {1}  # type: ignore[index]
    assert [scores(s, rfm, NOW)[0] for s in states] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # type: ignore[index]


def test_monetary_bins_are_about_2_percent_wide_and_cents_sit_in_bin_0():
    assert money_bin(Decimal("0.50")) == money_bin(Decimal(0)) == 0
    for x in (1, 7.3, 100, 101.5, 999.99, 123456):
        b = money_bin(Decimal(str(x)))
        assert 1.02 ** (b - 1) <= x < 1.02**b


def test_histogram_deltas_add_up_to_the_histogram_built_from_scratch():
    totals: Counter[str] = Counter()
    states = {c: CustomerState(subject=f"customer:{c}", profile=Profile())
              for c in ("ann", "bob", "cid")}
    day = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 in Paris: the local day counts
    plan = [("ann", 0, 30), ("bob", 0, 500), ("ann", 1, 45), ("cid", 2, 12), ("ann", 2, 900),
            ("bob", 5, 5), ("cid", 9, 1)]
    for n, (who, days, amount) in enumerate(plan):
        before = states[who]
        after = before.model_copy(deep=True)
        placed = event("OrderPlaced", customer_id=who, order_id=f"o{n}", total=amount,
                       occurred_at=day + timedelta(days=days),
                       lines=[{"product_id": "p", "unit_price": amount}])
        record(after, placed.detail)
        delta = rfm_delta(before, after, PARIS)
        assert delta and sum(delta.values()) in (0, 3)  # a move, or a first order
        totals.update(delta)
        states[who] = after

    assert {k: v for k, v in totals.items() if v} == histogram(list(states.values()))
    assert rfm_bins(states["ann"], PARIS)["r"] == "r_2026-07-04"  # type: ignore[index]
    assert rfm_delta(states["ann"], states["ann"]) == {}


# --- refresh ------------------------------------------------------------------------------------
BUYERS = {"field": "orders.count", "op": "greater", "value": 0,
          "time_frame": {"kind": "last_days", "days": 30}}


def catalog_of(*segments: Segment) -> Catalog:
    return Catalog(segments=segments)


def test_refresh_adds_a_qualifying_customer_with_history_and_an_effect():
    state = CustomerState(subject="customer:c1", orders=[order(ago(3))], order_count=1)
    catalog = catalog_of(segment(BUYERS, "buyers"))

    [added] = refresh(state, catalog, NOW)

    assert (added.type, added.segment, added.element_id, added.activity_id) == (
        "segment_added", "buyers", "buyers", "")
    assert (added.subject, added.entry, added.at, added.until) == ("customer:c1", 0, NOW, None)
    assert state.segments["buyers"] == Membership(since=NOW, until=None, by="rule")
    [change] = state.segment_history
    assert (change.segment, change.change, change.at, change.by) == ("buyers", "added", NOW, "rule")


def test_refresh_changes_nothing_when_nothing_changed():
    state = CustomerState(subject="customer:c1", orders=[order(ago(3))], order_count=1)
    catalog = catalog_of(segment(BUYERS, "buyers"))
    refresh(state, catalog, NOW)
    before = state.model_copy(deep=True)

    assert refresh(state, catalog, NOW + timedelta(days=1)) == []
    assert state == before


def test_refresh_removes_a_customer_the_rule_no_longer_holds_for():
    state = CustomerState(subject="customer:c1", orders=[order(ago(29))], order_count=1)
    catalog = catalog_of(segment(BUYERS, "buyers"))
    refresh(state, catalog, NOW)

    [removed] = refresh(state, catalog, NOW + timedelta(days=2))  # the order is 31 days old

    assert (removed.type, removed.segment, removed.at) == ("segment_removed", "buyers",
                                                           NOW + timedelta(days=2))
    assert "buyers" not in state.segments
    assert [c.change for c in state.segment_history] == ["added", "removed"]


def test_refresh_never_touches_managed_segments():
    managed = Segment(id="vip", name="VIP")
    state = CustomerState(subject="customer:c1",
                          segments={"vip": Membership(since=ago(9), by="import")})

    assert refresh(state, catalog_of(managed, segment(BUYERS, "buyers")), NOW) == []
    assert list(state.segments) == ["vip"]


def test_refresh_only_refreshes_the_named_segments():
    state = CustomerState(subject="customer:c1", orders=[order(ago(3))], order_count=1)
    catalog = catalog_of(segment(BUYERS, "a"), segment(BUYERS, "b"))

    effects = refresh(state, catalog, NOW, only={"b"})

    assert [e.segment for e in effects] == ["b"]  # type: ignore[union-attr]


def test_without_rfm_boundaries_rfm_segments_are_left_as_they_are():
    state = CustomerState(subject="customer:c1", orders=[order(ago(3))], order_count=1,
                          segments={"loyal": Membership(since=ago(5), by="rule")})
    loyal = segment({"field": "rfm.r", "op": "in", "value": [4, 5]}, "loyal")

    assert refresh(state, catalog_of(loyal), NOW) == []
    assert "loyal" in state.segments
    rfm = boundaries({"r_2026-07-01": 10, "f_1": 10, "m_100": 10}, PARIS)
    assert refresh(state, catalog_of(loyal), NOW, rfm) == []  # 2026-07-07 > every cut: R = 5


def test_a_time_limited_member_leaves_after_n_days_and_rejoins_only_after_leaving_the_rule():
    rule = {"field": "orders.count", "op": "greater", "value": 0,
            "time_frame": {"kind": "last_days", "days": 10}}
    catalog = catalog_of(segment(rule, "recent", membership_days=3))
    state = CustomerState(subject="customer:c1", orders=[order(ago(1))], order_count=1)

    def day(n: int) -> list[str]:
        return [e.type for e in refresh(state, catalog, NOW + timedelta(days=n))]

    assert day(0) == ["segment_added"]
    assert state.segments["recent"].until == NOW + timedelta(days=3)
    assert day(2) == []
    assert day(3) == ["segment_removed"]  # time is up, the rule still holds
    assert state.segments["recent"].by == EXPIRED
    assert not state.in_segment("recent", NOW + timedelta(days=3))
    assert day(5) == []  # still qualifies: stays out
    assert day(10) == []  # the order is 11 days old: left the rule, quietly
    assert "recent" not in state.segments
    state.orders.append(order(NOW + timedelta(days=11)))
    assert day(11) == ["segment_added"]  # qualifies anew


def test_a_segment_of_segments_is_refreshed_after_the_segments_it_uses():
    both = segment({"all": [{"field": "segments", "op": "contains", "value": "buyers"},
                            {"field": "segments", "op": "contains", "value": "french"}]}, "both")
    french = segment({"field": "country", "op": "equals", "value": "fr"}, "french")
    catalog = catalog_of(both, segment(BUYERS, "buyers"), french)
    state = CustomerState(subject="customer:c1", orders=[order(ago(3))], order_count=1,
                          profile=Profile(country="FR"))

    effects = refresh(state, catalog, NOW)

    assert [s.id for s in rule_order(catalog.segments)] == ["buyers", "french", "both"]
    assert [e.segment for e in effects] == ["buyers", "french", "both"]  # type: ignore[union-attr]


def test_an_idle_cart_is_recorded_as_abandoned_once():
    cart = CartState(cart_id="k1", updated_at=ago(2),
                     lines=[LineRecord(product_id="p", quantity=2, value=Decimal(30))])
    state = CustomerState(subject="customer:c1", cart=cart)

    first = note_abandoned_cart(state, NOW)

    assert first is not None and (first.kind, first.at) == ("CartAbandoned", ago(2))
    assert first.fields == {"cart_id": "k1", "value": "30", "items": "2"}
    assert note_abandoned_cart(state, NOW + timedelta(days=1)) is None
    assert len(state.behaviour) == 1
    assert note_abandoned_cart(state.model_copy(update={"cart": None}), NOW) is None


# --- windows and fields -------------------------------------------------------------------------
def test_a_purchase_31_days_ago_no_longer_counts_for_the_last_30_days():
    state = CustomerState(subject="customer:c1", orders=[order(ago(29))], order_count=1)
    last_order = {"field": "orders.last", "op": "in_last_days", "value": 30}

    assert holds(BUYERS, state) and holds(last_order, state)
    assert not holds(BUYERS, state, NOW + timedelta(days=2))
    assert not holds(last_order, state, NOW + timedelta(days=2))


def test_dated_windows_are_whole_days_in_the_segments_zone():
    late = order(datetime(2026, 6, 23, 22, 30, tzinfo=UTC))  # 24 June, 00:30 in Paris
    state = CustomerState(subject="customer:c1", orders=[late], order_count=1)
    sale = {"field": "orders.count", "op": "greater", "value": 0,
            "time_frame": {"kind": "between", "start": "2026-06-24", "end": "2026-07-21"}}

    assert holds(sale, state)
    assert not evaluate(segment(sale, time_zone="UTC"), state, NOW)
    assert holds({"field": "orders.first", "op": "equals", "value": "2026-06-24"}, state)
    assert holds({"field": "orders.last", "op": "after", "value": "2026-06-23"}, state)
    assert holds({"field": "orders.last", "op": "before", "value": "2026-06-25"}, state)


def test_order_fields_filter_by_category_product_manufacturer_discount_and_promotion():
    ski = order(ago(5), 300, ("Ski",), ident="o1")
    ski.lines[0].manufacturer = "Rossignol"
    promo = order(ago(4), 20, ("Socks",), discounted=True, ident="o2")
    promo.promotion_codes.append("SUMMER20")
    state = CustomerState(subject="customer:c1", orders=[ski, promo], order_count=7,
                          total_spent=Decimal(1000))

    def value(rule: dict[str, Any]) -> bool:
        return holds(rule, state)

    assert value({"field": "orders.count", "op": "equals", "value": 7})  # lifetime counter
    assert value({"field": "orders.value", "op": "equals", "value": 1000})
    assert value({"field": "orders.count", "op": "equals", "value": 1, "categories": ["ski"]})
    assert value({"field": "orders.value", "op": "equals", "value": 300,
                  "manufacturers": ["rossignol"]})
    assert value({"field": "orders.count", "op": "equals", "value": 1, "discounted": True})
    assert value({"field": "orders.count", "op": "equals", "value": 1,
                  "promotions": ["summer20"]})
    assert value({"field": "orders.largest", "op": "between", "value": [299, 301]})
    assert value({"field": "orders.items", "op": "equals", "value": 2,
                  "time_frame": {"kind": "last_days", "days": 30}})
    assert value({"field": "orders.count", "op": "equals", "value": 1, "products": ["p-Socks"]})
    assert not value({"field": "orders.largest", "op": "exists", "categories": ["Golf"]})


def test_visits_count_distinct_days_and_page_views_every_view():
    views = [*visits([1, 1.01, 1.02, 2]),
             seen("ProductViewed", ago(3), ("Ski",), product_id="p1"),
             seen("CategoryViewed", ago(3.1), ("Golf",), category="Golf")]
    state = CustomerState(subject="customer:c1", behaviour=views)
    month = {"kind": "last_days", "days": 30}

    assert holds({"field": "visits.count", "op": "equals", "value": 3, "time_frame": month},
                 state)
    assert holds({"field": "page_views.count", "op": "equals", "value": 6}, state)
    assert holds({"field": "page_views.count", "op": "equals", "value": 1,
                  "categories": ["ski"]}, state)
    assert holds({"field": "visits.last", "op": "in_last_days", "value": 1}, state)


@pytest.mark.parametrize("stored", [False, True], ids=["built", "parsed"])
def test_windows_judge_instants_whatever_the_order_or_the_offsets_of_a_history(stored: bool):
    """A state stored before histories were kept in time order, with times a shop sent in its
    own offset: counts, windows, first and last are judged on the instants. (Parsed, each
    datetime carries a tzinfo object of pydantic's own.)"""
    summer = timezone(timedelta(hours=2))
    edge = (NOW - timedelta(days=30)).astimezone(summer)  # the first instant of "last 30 days"
    state = CustomerState(
        subject="customer:c1", order_count=3,
        behaviour=[seen("PageVisited", ago(2)), seen("PageVisited", edge),
                   seen("PageVisited", edge - timedelta(microseconds=1)),
                   seen("EmailOpened", ago(1).astimezone(summer)), seen("PageVisited", ago(5))],
        orders=[order(ago(3)), order(ago(40).astimezone(summer)), order(ago(1), ident="o-1")])
    if stored:
        state = CustomerState.model_validate_json(state.model_dump_json())
    month = {"kind": "last_days", "days": 30}

    assert holds({"field": "page_views.count", "op": "equals", "value": 3, "time_frame": month},
                 state)
    assert holds({"field": "visits.count", "op": "equals", "value": 3, "time_frame": month},
                 state)
    assert holds({"field": "visits.last", "op": "in_last_days", "value": 2}, state)
    assert not holds({"field": "visits.last", "op": "in_last_days", "value": 1}, state)
    assert holds({"field": "emails_opened.last", "op": "in_last_days", "value": 1}, state)
    assert holds({"field": "orders.count", "op": "equals", "value": 2, "time_frame": month},
                 state)
    assert holds({"field": "orders.first", "op": "equals", "value": "2026-05-31"}, state)
    assert holds({"field": "orders.last", "op": "equals", "value": "2026-07-09"}, state)


def test_visits_are_counted_in_the_segments_local_days_in_a_window_or_at_any_time():
    def paris(day: int, hour: int, minute: int, micro: int = 0) -> datetime:
        return datetime(2026, 7, day, hour, minute, 59 if micro else 0, micro, tzinfo=PARIS)

    state = CustomerState(subject="customer:c1", behaviour=[
        seen("PageVisited", paris(7, 23, 59, 999_999)),
        seen("ProductViewed", paris(8, 23, 30)),
        seen("PageVisited", paris(9, 0, 30).astimezone(UTC)),  # 8 July in UTC, 9 in Paris
        seen("CategoryViewed", paris(9, 1, 30)),
        seen("PageVisited", paris(10, 0, 0)),
        seen("SearchPerformed", paris(6, 12, 0))])  # not a view
    days = 4  # 7, 8, 9 and 10 July in Paris

    for frame in ({"kind": "last_days", "days": 30}, {"kind": "any_time"},
                  {"kind": "between", "start": "2026-07-01", "end": "2026-07-10"}):
        assert holds({"field": "visits.count", "op": "equals", "value": days,
                      "time_frame": frame}, state), frame
        assert holds({"field": "visits.count", "op": "greater", "value": days - 1,
                      "time_frame": frame}, state), frame
        assert not holds({"field": "visits.count", "op": "greater", "value": days,
                          "time_frame": frame}, state), frame
    assert holds({"field": "visits.count", "op": "equals", "value": 2,
                  "time_frame": {"kind": "between", "start": "2026-07-08", "end": "2026-07-09"}},
                 state)


def test_custom_events_are_counted_by_name_and_parameters():
    state = CustomerState(subject="customer:c1", behaviour=[
        seen("EmailClicked", ago(1), campaign="free-shipping"),
        seen("EmailClicked", ago(2), campaign="black-friday"),
        seen("WishListAdded", ago(2))])

    assert holds({"field": "emails_clicked.count", "op": "equals", "value": 1,
                  "parameters": {"campaign": "Free-Shipping"}}, state)
    assert holds({"field": "events.count", "op": "equals", "value": 1,
                  "event": "WishListAdded"}, state)
    assert not holds({"field": "emails_opened.last", "op": "exists"}, state)


def test_profile_attributes_consent_cart_and_birthday_month():
    state = CustomerState(
        subject="customer:c1", consent=ConsentState(email=True),
        profile=Profile(city="Lyon", birthday=date(1984, 12, 8),
                        attributes={"children": 2, "tier": "gold", "vip": True}),
        cart=CartState(cart_id="k", updated_at=ago(1),
                       lines=[LineRecord(product_id="p", quantity=3, value=Decimal(90))]))
    december = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 1 December in Paris

    assert holds({"field": "city", "op": "in", "value": ["Paris", "LYON"]}, state)
    assert holds({"field": "city", "op": "contains", "value": "yo"}, state)
    assert holds({"field": "country", "op": "not_equals", "value": "FR"}, state)
    assert not holds({"field": "country", "op": "exists"}, state)
    assert holds({"field": "attributes.children", "op": "greater", "value": 1}, state)
    assert holds({"field": "attributes.tier", "op": "equals", "value": "Gold"}, state)
    assert holds({"field": "attributes.vip", "op": "equals", "value": True}, state)
    assert not holds({"field": "attributes.pets", "op": "exists"}, state)
    assert holds({"field": "consent.email", "op": "equals", "value": True}, state)
    assert holds({"field": "cart.items", "op": "equals", "value": 3}, state)
    assert holds({"field": "birthday.month", "op": "equals", "value": "current"}, state, december)
    assert not holds({"field": "birthday.month", "op": "equals", "value": "current"}, state)
    assert holds({"field": "birthday", "op": "before", "value": "1990-01-01"}, state)


def test_not_and_any_combine_conditions():
    state = CustomerState(subject="customer:c1", profile=Profile(country="FR"))
    fr = {"field": "country", "op": "equals", "value": "FR"}
    de = {"field": "country", "op": "equals", "value": "DE"}

    assert holds({"any": [de, fr]}, state)
    assert not holds({"all": [de, fr]}, state)
    assert holds({"not": de}, state)
    assert not holds({"not": {"any": [fr]}}, state)


def test_every_field_of_the_registry_can_be_evaluated():
    state = CustomerState(subject="customer:c1")
    rfm = boundaries({})
    for name, kind in FIELDS.items():
        rule: dict[str, Any] = {"field": name, "op": "contains" if kind == "segments" else
                                "exists"}
        if kind == "segments":
            rule["value"] = "x"
        if name.startswith("events."):
            rule["event"] = "WishListAdded"
        assert holds(rule, state, rfm=rfm) in (True, False), name


# --- bad input ----------------------------------------------------------------------------------
def checked(*docs: dict[str, Any]) -> tuple[dict[str, Segment], list[str]]:
    good, problems = check_segments([(f"{d['id']}.json", json.dumps(d)) for d in docs])
    return good, [str(p) for p in problems]


def rule_doc(ident: str, rule: Any, **props: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident, "kind": "rule", "rule": rule, **props}


@pytest.mark.parametrize(("rule", "problem"), [
    ({"all": [{"field": "citty", "op": "equals", "value": "Lyon"}]},
     "s.json : $.rule.all[0].field : unknown field 'citty' (did you mean 'city'?)"),
    ({"any": [{"not": {"field": "city", "op": "between", "value": ["a", "b"]}}]},
     "s.json : $.rule.any[0].not.op : operator 'between' does not fit 'city', a text field"),
    ({"field": "orders.count", "op": "contains", "value": 2},
     "s.json : $.rule.op : operator 'contains' does not fit 'orders.count', a number field"),
    ({"field": "orders.count", "op": "greater", "value": "two"},
     "s.json : $.rule.value : a number field takes a number, not 'two'"),
    ({"field": "rfm.r", "op": "in", "value": [4, 6]},
     "s.json : $.rule.value : an RFM score is 1-5, not 6"),
    ({"field": "orders.value", "op": "between", "value": [500, 100]},
     "s.json : $.rule.value : 'between': the low value is greater than the high one"),
    ({"field": "city", "op": "equals", "value": "Lyon", "categories": ["Ski"]},
     "s.json : $.rule.categories : 'categories' does not apply to the field 'city'"),
    ({"field": "events.count", "op": "greater", "value": 0},
     "s.json : $.rule : 'events.count' needs 'event'"),
    ({"field": "city", "op": "equals"}, "s.json : $.rule : operator 'equals' needs a value"),
    ({"all": [{"field": "orders.count", "op": "greater", "value": 0,
               "time_frame": {"kind": "since_activity_start"}}]},
     "s.json : $.rule.all[0].time_frame : a segment has no activity"),
    ({"all": [{"feld": "city"}]}, 's.json : $.rule.all[0] : a condition is {"all": [...]}'),
    ({"all": []}, "s.json : $.rule.all : List should have at least 1 item"),
])
def test_a_bad_rule_is_reported_at_its_json_path(rule: Any, problem: str):
    good, problems = checked(rule_doc("s", rule))

    assert good == {}
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_segment_level_mistakes_are_reported():
    _, problems = checked(rule_doc("a", None), {"id": "b", "name": "b", "rule": {
        "field": "city", "op": "exists"}}, rule_doc("c", {"field": "city", "op": "exists"},
                                                    managed_by_activities=True,
                                                    time_zone="Mars/Olympus"),
                          {"id": "d", "name": "d", "membership_days": 3, "time_zone": "UTC"})

    assert problems == [
        "a.json : $ : a rule-based segment needs a 'rule'",
        "b.json : $.rule : only rule-based segments (kind 'rule') have 'rule'",
        "c.json : $.managed_by_activities : a rule-based segment cannot be changed by activities",
        "c.json : $.time_zone : unknown IANA time zone 'Mars/Olympus'",
        "d.json : $.time_zone : only rule-based segments (kind 'rule') have 'time_zone'",
        "d.json : $.membership_days : only rule-based segments (kind 'rule') have "
        "'membership_days'",
    ]


def test_an_unknown_segment_is_reported_and_its_dependents_are_left_out():
    good, problems = checked(
        rule_doc("a", {"field": "segments", "op": "in", "value": ["b", "nope"]}),
        rule_doc("b", {"field": "city", "op": "exists"}),
        rule_doc("c", {"all": [{"field": "segments", "op": "contains", "value": "a"}]}))

    assert list(good) == ["b"]
    assert problems == [
        "a.json : $.rule.value[1] : unknown segment 'nope'",
        "c.json : $.rule.all[0].value : segment 'a' has problems: this rule cannot be evaluated "
        "without it"]


def test_segments_referring_to_each_other_in_a_cycle_are_named():
    good, problems = checked(
        rule_doc("a", {"field": "segments", "op": "contains", "value": "b"}),
        rule_doc("b", {"any": [{"field": "segments", "op": "contains", "value": "a"}]}),
        rule_doc("self", {"not": {"field": "segments", "op": "contains", "value": "self"}}),
        {"id": "m", "name": "managed"})

    assert list(good) == ["m"]
    assert problems == [
        "a.json : $.rule.value : segments refer to each other in a cycle: a → b → a",
        "b.json : $.rule.any[0].value : segments refer to each other in a cycle: a → b → a",
        "self.json : $.rule.not.value : segments refer to each other in a cycle: self → self"]


def test_a_duplicate_segment_id_is_reported_and_the_first_kept():
    good, problems = check_segments([
        ("one.json", json.dumps({"id": "x", "name": "first"})),
        ("two.json", json.dumps({"id": "x", "name": "second"}))])

    assert good["x"].name == "first"
    assert [str(p) for p in problems] == ["two.json : $.id : id 'x' is also used by one.json"]


def test_managed_segment_files_of_before_rules_stay_valid():
    old = Segment.model_validate({"schema_version": 1, "id": "golfers", "name": "Golfers",
                                  "managed_by_activities": True})

    assert (old.kind, old.managed_by_activities, old.rule) == ("managed", True, None)
    assert Segment.model_validate(rule_doc("r", {"field": "city", "op": "exists"})
                                  ).managed_by_activities is False


def test_the_schema_tells_editors_the_fields_and_the_operators_each_takes():
    exported = schema("segment")
    condition = exported["$defs"]["Condition"]  # type: ignore[index]

    fields = {f.get("const"): f.get("description")
              for f in condition["properties"]["field"]["anyOf"]}
    assert fields["orders.last"].startswith("instant: the last order's time")
    text_rule = next(r for r in condition["allOf"]
                     if "city" in r["if"]["properties"]["field"].get("enum", []))
    assert "between" not in text_rule["then"]["properties"]["op"]["enum"]
