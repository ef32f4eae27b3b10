"""The daily check's rate per worker, and what its scan costs in read units per customer.

A synthetic customer base of new, active and heavy customers and guests (`customer_base`) is
stored as `DynamoCustomerStore` stores it — through the real store, into an in-memory DynamoDB
(`FakeDynamo`): one item per customer, the state as compressed JSON (`state_codec`) plus its
key, kind and version. The real `DailyWorker` then checks every scan segment of that table with
the real `DynamoCustomerScan` and store on top of the fake: parse each page, `daily()` each
customer against the shipped catalog (examples/activities, examples/segments) and commit what
changed, conditionally on the version read.

The fake charges a Scan page as DynamoDB does: the cumulative size of the items it returns,
rounded up to 4 KB, half a read unit per 4 KB (eventually consistent, as the scan reads), with
DynamoDB's item size (attribute names + values). CPU is `time.process_time` (all threads of this
process): the figure per customer does not depend on the table's size, which is why a sample of
tens of thousands of customers stands for a table of millions.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import math
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError
from dialogue.aws import state_codec
from dialogue.aws.dynamo import DynamoCustomerStore, state_from_item
from dialogue.aws.scan import DynamoCustomerScan
from dialogue.engine.catalog import Catalog
from dialogue.engine.checks import load_catalog
from dialogue.engine.daily import daily
from dialogue.engine.rfm import RfmBoundaries, boundaries, rfm_bins
from dialogue.model.customer import (
    CartState,
    ConsentState,
    CustomerState,
    Instance,
    Journey,
    LineRecord,
    Membership,
    Occurrence,
    OrderRecord,
    SegmentChange,
)
from dialogue.model.events import Profile
from dialogue.services import DailyWorker

ROOT = Path(__file__).resolve().parents[1]
PARIS = ZoneInfo("Europe/Paris")  # the template's TimeZone
# 02:00 in Paris on an ordinary day of the shipped catalog: the red label sale (from 1 December)
# has its customers waiting for the reminder, the ski sale (5-13 December) not started yet.
NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
MAIN, CUSTOMERS = "main", "customers"
SEGMENT_SHARDS = 16
CUSTOMERS_DEFAULT = 10_000
SCAN_SEGMENTS = 4  # scan segments the bench's workers check, one after the other
GOAL_READ_UNITS = 0.25  # per customer per daily run
GOAL_MINUTES = 15  # 10 M customers checked within
TARGET_CUSTOMERS = 10_000_000
LAMBDA_MEMORY_MB = 1024  # the template's DailyWorkerFunction
FULL_VCPU_MB = 1769  # Lambda gives one vCPU at 1,769 MB, a share of it below
CUSTOMERS_PER_SEGMENT = 100_000  # the template's DailyScanSegments guidance
WORK_MINUTES = 14  # a worker's 15-minute timeout less the minute it keeps to hand on a cursor

# --- the customer base -------------------------------------------------------------------------
CATEGORIES = ["Ski", "Boots", "Tennis", "Golf", "Kids", "Shoes", "Jackets", "Bags", "Outlet",
              "Summer", "Watches", "Running"]
BRANDS = ["Rossignol", "Wilson", "Salomon", "Head", "Babolat", "Callaway", "Acme"]
FIRST = ["Léa", "Hugo", "Emma", "Louis", "Anna", "Paul", "Mia", "Jonas", "Chloé", "Noah"]
LAST = ["Martin", "Bernard", "Müller", "Schmidt", "Dubois", "Durand", "Weber", "Leroy"]
COUNTRIES = ["FR"] * 6 + ["DE"] * 2 + ["BE", "CH", "AT", "NL"]
QUERIES = ["ski boots", "wilson racket", "socks", "rossignol skis", "golf balls", "kids helmet",
           "running shoes", "down jacket"]
# (weight, kind): a shop's tracked behaviour; the custom events are those rules count.
BEHAVIOUR = [(40, "ProductViewed"), (15, "CategoryViewed"), (16, "PageVisited"),
             (12, "SearchPerformed"), (6, "EmailOpened"), (2, "EmailClicked"),
             (3, "RecommendationClicked"), (2, "CampaignViewed"), (2, "SocialParticipation"),
             (2, "WishlistAdded")]
# (weight, kind, orders, behaviour occurrences, months of history)
PROFILES = [(35, "new", (0, 1), (0, 15), 1), (37, "active", (1, 8), (15, 120), 12),
            (10, "heavy", (10, 60), (150, 500), 18), (18, "guest", (0, 0), (1, 30), 2)]


def _hex(r: random.Random, bits: int = 64) -> str:
    return f"{r.getrandbits(bits):0{bits // 4}x}"


class BaseMaker:
    """Customer states as `on_event` leaves them: profile, consent, bounded histories, managed
    segments, journeys in the shipped activities (some parked at a wait), recent event ids.

    Event ids are random 64-bit hex, as the bench's shop events carry (`workload.EventMaker`);
    what an occurrence or an order line says is drawn from pools built once, the ids and times
    afresh for each (the generator would otherwise take longer than the check it feeds)."""

    def __init__(self, seed: int, now: datetime):
        self.r, self.now = random.Random(seed), now
        self._kinds = [k for _, k in BEHAVIOUR]
        self._cum = list(itertools.accumulate(w for w, _ in BEHAVIOUR))
        self._fields = {kind: [self._fields_of(kind) for _ in range(400)] for kind in self._kinds}
        self._lines = [self._line() for _ in range(4000)]
        self._profiles = [p[1] for p in PROFILES]
        self._profile_cum = list(itertools.accumulate(p[0] for p in PROFILES))

    def state(self, i: int) -> tuple[str, CustomerState]:
        r = self.r
        kind = r.choices(self._profiles, cum_weights=self._profile_cum)[0]
        _, _, (o_lo, o_hi), (b_lo, b_hi), months = next(p for p in PROFILES if p[1] == kind)
        span = timedelta(days=30 * months)
        start = self.now - span * r.uniform(0.3, 1.0)  # first seen
        if kind == "guest":
            state = CustomerState.model_construct(subject=f"guest:g{_hex(r, 48)}")
        else:
            state = self._registered(i, start)
        events: list[tuple[datetime, str]] = []
        if state.registered_at is not None:
            events.append((state.registered_at, "e-" + _hex(r)))
        n_orders = r.randint(o_lo, o_hi) if o_hi else 0
        for at in self._moments(start, n_orders):
            order = self._order(at)
            state.orders.append(order)
            state.total_spent += order.total
            events.append((at, "e-" + _hex(r)))
        state.order_count = n_orders + (r.randint(0, 20) if kind == "heavy" else 0)  # older ones
        n = r.randint(b_lo, b_hi)
        kinds = r.choices(self._kinds, cum_weights=self._cum, k=n)
        pools, construct = self._fields, Occurrence.model_construct
        for at, what in zip(self._moments(start, n), kinds, strict=True):
            fields, tags = pools[what][int(r.random() * 400)]
            state.behaviour.append(construct(at=at, kind=what, fields=fields, tags=tags))
            events.append((at, "e-" + _hex(r)))
        # events that leave no history: log-ins, cart updates, profile changes
        events += [(at, "e-" + _hex(r)) for at in self._moments(start, len(events) // 4)]
        events.sort()
        state.processed = {}
        for at, event_id in events:  # each remembered as on_event does when it applies it
            state.remember(event_id, at)
        if r.random() < (0.15 if kind != "new" else 0.05):
            updated = self.now - timedelta(days=r.uniform(0, 10))
            state.cart = CartState.model_construct(
                cart_id="cart-" + _hex(r, 48), updated_at=updated.replace(microsecond=0),
                lines=r.sample(self._lines, r.randint(1, 3)))
        if kind != "guest":
            self._memberships(state, kind)
            self._journeys(state)
        return kind, state

    def _moments(self, start: datetime, n: int) -> list[datetime]:
        """`n` moments between `start` and now, oldest first, denser lately, whole seconds."""
        seconds = int((self.now - start).total_seconds())
        r = self.r
        start = start.replace(microsecond=0)
        return [start + timedelta(seconds=int(seconds * x ** 0.7))
                for x in sorted(r.random() for _ in range(n))]

    def _registered(self, i: int, start: datetime) -> CustomerState:
        r = self.r
        first, last = r.choice(FIRST), r.choice(LAST)
        profile = Profile.model_construct(
            email=f"{first.lower()}.{last.lower()}{i}@example.com", first_name=first,
            last_name=last, country=r.choice(COUNTRIES), language=r.choice(["fr", "de", "en"]),
            phone=f"+336{r.randint(10_000_000, 99_999_999)}" if r.random() < 0.4 else None,
            birthday=(date(r.randint(1950, 2006), 1, 1) + timedelta(days=r.randint(0, 364))
                      if r.random() < 0.6 else None),
            city=None, attributes={"tier": r.choice(["bronze", "silver", "gold"])}
            if r.random() < 0.3 else {})
        consent = ConsentState.model_construct(email=r.random() < 0.7, sms=r.random() < 0.3,
                                               tracking=r.random() < 0.9)
        return CustomerState.model_construct(subject=f"customer:c{i:08d}", profile=profile,
                                             consent=consent,
                                             registered_at=start.replace(microsecond=0))

    def _line(self) -> LineRecord:
        r = self.r
        return LineRecord.model_construct(
            product_id=f"p{r.randint(1, 20_000)}", categories=r.sample(CATEGORIES, 2),
            manufacturer=r.choice(BRANDS), quantity=r.randint(1, 3),
            value=Decimal(r.randint(500, 25_000)) / 100, discounted=r.random() < 0.15)

    def _order(self, at: datetime) -> OrderRecord:
        r = self.r
        lines = r.sample(self._lines, 1 if r.random() < 0.6 else 2 if r.random() < 0.75 else 3)
        total = sum((ln.value for ln in lines), Decimal(0))
        return OrderRecord.model_construct(
            order_id="o-" + _hex(r, 48), at=at, total=total,
            lines=lines, promotion_codes=["SUMMER"] if r.random() < 0.1 else [])

    def _fields_of(self, kind: str) -> tuple[dict[str, str], list[str]]:
        r = self.r
        tags: list[str] = []
        match kind:
            case "ProductViewed":
                fields = {"product_id": f"p{r.randint(1, 20_000)}",
                          "manufacturer": r.choice(BRANDS)}
                tags = r.sample(CATEGORIES, 2)
            case "CategoryViewed":
                category = r.choice(CATEGORIES)
                fields, tags = {"category": category}, [category, "Sports"]
            case "PageVisited":
                fields = {"url": r.choice(["https://shop.example/", "https://shop.example/sale",
                                           "https://shop.example/help"])}
            case "SearchPerformed":
                fields = {"query": r.choice(QUERIES)}
            case "SocialParticipation":
                fields = {"kind": r.choice(["review", "rating", "like"]),
                          "product_id": f"p{r.randint(1, 20_000)}"}
            case "EmailOpened" | "EmailClicked" | "CampaignViewed":
                fields = {"campaign": r.choice(["july", "winter", "welcome", "red-label"])}
            case _:
                fields = {"product_id": f"p{r.randint(1, 20_000)}"}
        return fields, tags

    def _memberships(self, state: CustomerState, kind: str) -> None:
        """Managed segments the shipped activities fill: registered customers, sports buyers,
        brand searchers."""
        r, since = self.r, state.registered_at or self.now
        added = {"registered-customers": ("welcome", since)}
        for order in state.orders:
            for line in order.lines:
                for category, segment in (("Ski", "skiers"), ("Golf", "golfers"),
                                          ("Tennis", "tennis-players"),
                                          ("Kids", "kids-clothes-buyers")):
                    if category in line.categories and segment not in added:
                        added[segment] = ("sports-interests", order.at)
        for o in state.behaviour:
            query = o.fields.get("query", "")
            for brand in ("rossignol", "wilson"):
                if brand in query and f"interest-{brand}" not in added:
                    added[f"interest-{brand}"] = ("brand-search", o.at)
        if kind == "heavy" and r.random() < 0.5:
            added["preferred-customers"] = ("import", since)
        for segment, (by, at) in added.items():
            state.segments[segment] = Membership.model_construct(since=at, until=None, by=by)
            state.segment_history.append(SegmentChange.model_construct(
                segment=segment, change="added", at=at, by=by, element="add"))

    def _journeys(self, state: CustomerState) -> None:
        """Where the shipped activities left them: the welcome and follow-up after registering
        (a wait of one week, then another), the red label sale since 1 December (its 4-day
        wait), an entry per order in the per-order dialogues."""
        r, now = self.r, self.now
        registered = state.registered_at or now
        state.journeys["welcome"] = Journey.model_construct(entries=1, last_entered_at=registered,
                                                            waiting=[])
        follow = Journey.model_construct(entries=1, last_entered_at=registered, waiting=[])
        age = now - registered
        if age < timedelta(days=14):
            element = "wait-1" if age < timedelta(days=7) else "wait-2"
            due = registered + timedelta(days=7 if element == "wait-1" else 14)
            if r.random() < 0.002:  # a lost timer: the daily check's safety net resumes it
                due = now - timedelta(hours=3)
            follow.waiting = [Instance.model_construct(entry=1, element=element, since=registered,
                                                       due_at=due)]
        state.journeys["registration-follow-up"] = follow
        sale = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 02:00 in Paris
        if registered < sale:
            state.journeys["red-label-sale"] = Journey.model_construct(
                entries=1, last_entered_at=sale, waiting=[Instance.model_construct(
                    entry=1, element="wait", since=sale, due_at=sale + timedelta(days=4))])
        if state.orders:
            last = state.orders[-1].at
            state.journeys["sports-interests"] = Journey.model_construct(
                entries=len(state.orders), last_entered_at=last, waiting=[])
            state.journeys["coupon-per-order-first"] = Journey.model_construct(
                entries=1, last_entered_at=state.orders[0].at, waiting=[])


def customer_base(n: int, now: datetime = NOW, seed: int = 3) -> list[tuple[str, CustomerState]]:
    maker = BaseMaker(seed, now)
    return [maker.state(i) for i in range(n)]


def shipped_catalog() -> Catalog:
    """examples/activities and examples/segments, as the catalog loads them."""
    catalog, problems = load_catalog(
        [(str(f), f.read_text(encoding="utf-8"))
         for f in sorted((ROOT / "examples" / "activities").glob("*.json"))],
        [(str(f), f.read_text(encoding="utf-8"))
         for f in sorted((ROOT / "examples" / "segments").glob("*.json"))])
    if problems:
        raise SystemExit(f"the shipped catalog has problems: {problems[:3]}")
    return catalog


def histogram(states: list[CustomerState], zone: ZoneInfo = PARIS) -> dict[str, int]:
    """The RFM histogram the store keeps for these customers (what DynamoRfm would merge)."""
    counts: Counter[str] = Counter()
    for state in states:
        counts.update((rfm_bins(state, zone) or {}).values())
    return dict(counts)


# --- DynamoDB in memory -----------------------------------------------------------------------
MB = 1024 * 1024


def number_size(text: str) -> int:
    """DynamoDB's size of a number: 1 byte per two significant digits, plus 1."""
    digits = text.lstrip("-").replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    match kind:
        case "S":
            return len(v.encode())
        case "B":
            return len(v)
        case "N":
            return number_size(v)
        case "BOOL" | "NULL":
            return 1
        case "M":
            return 3 + sum(len(k.encode()) + value_size(x) for k, x in v.items())
        case "L":
            return 3 + sum(value_size(x) + 1 for x in v)
    raise ValueError(kind)


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: the UTF-8 length of each attribute name plus its value's size."""
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


def _key(key: dict[str, Any]) -> tuple[str, str]:
    return key["pk"]["S"], key["sk"]["S"]


def _failed(code: str, operation: str, reasons: list[dict[str, str]] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": code}}
    if reasons is not None:
        response["CancellationReasons"] = reasons
    return ClientError(response, operation)  # type: ignore[arg-type]


@dataclass
class FakeDynamo:
    """The calls DynamoCustomerStore and DynamoCustomerScan make, in memory, with DynamoDB's
    conditions (`attribute_not_exists(pk)`, `version = :v`), capacity units and scan pages.

    Writes are counted per partition key in write units: 1 per KB of item (rounded up), twice
    that inside a transaction. A scan page stops at `Limit` items or 1 MB read."""

    tables: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict))
    calls: Counter[str] = field(default_factory=Counter)
    write_units: Counter[str] = field(default_factory=Counter)  # partition key → WCU
    writes: Counter[str] = field(default_factory=Counter)  # partition key → write requests
    item_units: Counter[tuple[str, str]] = field(default_factory=Counter)  # (pk, sk) → WCU
    read_units: float = 0.0
    _order: dict[tuple[str, int], list[list[tuple[str, str]]]] = field(default_factory=dict)
    _position: dict[tuple[str, int], dict[tuple[str, str], int]] = field(default_factory=dict)

    # reads
    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False,
                 **_: Any) -> dict[str, Any]:
        self.calls["GetItem"] += 1
        item = self.tables[TableName].get(_key(Key))
        if item is not None:
            self.read_units += math.ceil(item_size(item) / 4096) * (1 if ConsistentRead else 0.5)
        return {"Item": item} if item is not None else {}

    def scan(self, TableName: str, Segment: int = 0, TotalSegments: int = 1, Limit: int = 1000,
             ExclusiveStartKey: dict[str, Any] | None = None, ConsistentRead: bool = False,
             ReturnConsumedCapacity: str = "NONE", **_: Any) -> dict[str, Any]:
        self.calls["Scan"] += 1
        order = self._segments(TableName, TotalSegments)[Segment]
        position = self._position[(TableName, TotalSegments)]
        i = position[_key(ExclusiveStartKey)] + 1 if ExclusiveStartKey else 0
        table, items, size = self.tables[TableName], [], 0
        while i < len(order) and len(items) < Limit and size < MB:
            item = table.get(order[i])
            i += 1
            if item is not None:
                items.append(item)
                size += item_size(item)
        units = math.ceil(size / 4096) * (1 if ConsistentRead else 0.5)
        self.read_units += units
        page: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        if i < len(order):
            pk, sk = order[i - 1]
            page["LastEvaluatedKey"] = {"pk": {"S": pk}, "sk": {"S": sk}}
        if ReturnConsumedCapacity != "NONE":
            page["ConsumedCapacity"] = {"TableName": TableName, "CapacityUnits": units}
        return page

    def _segments(self, table: str, total: int) -> list[list[tuple[str, str]]]:
        """A parallel scan's segments: contiguous ranges of the partition keys' hash space."""
        if (table, total) not in self._order:
            segments: list[list[tuple[int, tuple[str, str]]]] = [[] for _ in range(total)]
            for key in self.tables[table]:
                h = int.from_bytes(hashlib.md5(key[0].encode()).digest()[:4], "big")
                segments[h * total >> 32].append((h, key))
            self._order[(table, total)] = [[k for _, k in sorted(s)] for s in segments]
            self._position[(table, total)] = {k: n for s in self._order[(table, total)]
                                              for n, k in enumerate(s)}
        return self._order[(table, total)]

    # writes
    def put_item(self, TableName: str, Item: dict[str, Any], ConditionExpression: str = "",
                 ExpressionAttributeValues: dict[str, Any] | None = None,
                 **_: Any) -> dict[str, Any]:
        self.calls["PutItem"] += 1
        if not self._holds(TableName, _key(Item), ConditionExpression, ExpressionAttributeValues):
            raise _failed("ConditionalCheckFailedException", "PutItem")
        self._write(TableName, Item, 1)
        return {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]],
                             **_: Any) -> dict[str, Any]:
        self.calls["TransactWriteItems"] += 1
        reasons, ok = [], True
        for op in TransactItems:
            put = op.get("Put")
            good = put is None or self._holds(put["TableName"], _key(put["Item"]),
                                              put.get("ConditionExpression", ""),
                                              put.get("ExpressionAttributeValues"))
            reasons.append({"Code": "None" if good else "ConditionalCheckFailed"})
            ok = ok and good
        if not ok:
            raise _failed("TransactionCanceledException", "TransactWriteItems", reasons)
        for op in TransactItems:
            if "Put" in op:
                self._write(op["Put"]["TableName"], op["Put"]["Item"], 2)
            elif "Delete" in op:
                d = op["Delete"]
                gone = self.tables[d["TableName"]].pop(_key(d["Key"]), d["Key"])
                self._count(_key(d["Key"]), item_size(gone), 2)
            elif "Update" in op:  # counters: ADD to small items, sized by key and names
                u = op["Update"]
                size = item_size(u["Key"]) + sum(
                    len(n) + 8 for n in u.get("ExpressionAttributeNames", {}).values())
                self._count(_key(u["Key"]), size, 2)
        return {}

    def _holds(self, table: str, key: tuple[str, str], condition: str,
               values: dict[str, Any] | None) -> bool:
        current = self.tables[table].get(key)
        if not condition:
            return True
        if condition == "attribute_not_exists(pk)":
            return current is None
        if condition == "version = :v":
            return current is not None and current["version"] == (values or {})[":v"]
        raise NotImplementedError(condition)

    def _write(self, table: str, item: dict[str, Any], factor: int) -> None:
        self.tables[table][_key(item)] = item
        self._count(_key(item), item_size(item), factor)

    def _count(self, key: tuple[str, str], size: int, factor: int) -> None:
        units = math.ceil(max(size, 1) / 1024) * factor
        self.writes[key[0]] += 1
        self.write_units[key[0]] += units
        self.item_units[key] += units


class NullDynamo:
    """Takes writes and drops them: what the store's commit costs in CPU, without a table."""

    def put_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def transact_write_items(self, **_: Any) -> dict[str, Any]:
        return {}


@dataclass
class FixedRfm:
    """The day's RFM histogram (DynamoRfm merges its shards once per run and snapshots it)."""

    histogram: dict[str, int]
    reads: int = 0

    def merged(self) -> dict[str, int]:
        self.reads += 1
        return self.histogram

    def save_snapshot(self, day: str, histogram: dict[str, int]) -> None:
        pass

    def snapshot(self, day: str) -> dict[str, int] | None:
        self.reads += 1
        return self.histogram


@dataclass
class Fixed:
    value: Any

    def catalog(self) -> Any:
        return self.value

    def now(self) -> Any:
        return self.value


@dataclass
class Handed:
    items: list[dict[str, Any]] = field(default_factory=list)

    def send(self, items: list[dict[str, Any]]) -> None:
        self.items += items


# --- the measurement ----------------------------------------------------------------------------
@dataclass
class Sizes:
    json_bytes: float  # the state document's JSON
    doc_bytes: float  # compressed, as stored
    item_bytes: float  # DynamoDB's item size: doc + key + kind + version


@dataclass
class Result:
    customers: int
    mix: Counter[str]
    sizes: dict[str, Sizes]  # by kind of customer, and "all"
    p95_item: int
    max_item: int
    build_seconds: float
    cpu_seconds: float  # DailyWorker over every scan segment, all threads
    wall_seconds: float
    checked: int
    changed: int
    read_units: float  # scan pages, as charged
    pages: int
    other_reads: Counter[str]  # DynamoDB reads besides the scan pages
    rfm_reads: int  # RFM snapshot reads (one per worker)
    handed_on: int
    write_units: int
    parse_us: float  # per customer: state_from_item (zlib + model_validate_json)
    decide_us: float  # per customer: daily()
    commit_us: float  # per customer written: the store's commit, serialising included
    gc_us: float  # of parse_us: the garbage collector, with a page of states alive
    sample: int
    sample_changed: int
    effects: Counter[str] = field(default_factory=Counter)

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.checked * 1e6

    @property
    def per_minute(self) -> float:
        """Customers per minute per worker, one core."""
        return 60 / (self.cpu_seconds / self.checked)

    @property
    def units_per_customer(self) -> float:
        return self.read_units / self.checked

    def lambda_per_minute(self, memory_mb: int = LAMBDA_MEMORY_MB) -> float:
        return self.per_minute * min(1.0, memory_mb / FULL_VCPU_MB)

    def workers(self, memory_mb: int = LAMBDA_MEMORY_MB, customers: int = TARGET_CUSTOMERS,
                minutes: float = WORK_MINUTES) -> int:
        return math.ceil(customers / (self.lambda_per_minute(memory_mb) * minutes))

    @property
    def all_changed_us(self) -> float:
        """CPU per customer on a day when every customer is written (a campaign's first day):
        the worker's figure plus a commit for each customer it did not write."""
        return self.cpu_us + (1 - self.changed / self.checked) * self.commit_us


@dataclass
class Base:
    """The synthetic table, stored, with what the day's check needs; shared with the segments
    bench, which evaluates the same customers."""

    customers: int
    mix: Counter[str]
    kinds: dict[str, str]  # subject → kind of customer
    catalog: Catalog
    histogram: dict[str, int]
    rfm: RfmBoundaries
    client: FakeDynamo
    store: DynamoCustomerStore
    items: list[dict[str, Any]]  # the stored items before today's check
    seconds: float


def build(customers: int = CUSTOMERS_DEFAULT, seed: int = 3) -> Base:
    """Generate, settle (yesterday's check, so memberships and journeys are as they would be:
    today's run sees one day's changes, not the first fill of every rule segment) and store."""
    started = time.perf_counter()
    gc.disable()  # the generator holds every state: collections would walk them all, often
    try:
        return _build(customers, seed, started)
    finally:
        gc.enable()


def _build(customers: int, seed: int, started: float) -> Base:
    catalog = shipped_catalog()
    base = customer_base(customers, NOW, seed)
    kinds = {state.subject: kind for kind, state in base}
    states = [s for _, s in base]
    del base
    hist = histogram(states)
    rfm = boundaries(hist, PARIS)
    yesterday = NOW - timedelta(days=1)
    states = [daily(s, catalog, yesterday, PARIS, rfm).state for s in states]
    client = FakeDynamo()
    store = DynamoCustomerStore(client, MAIN, SEGMENT_SHARDS, customers_table=CUSTOMERS,
                                zone=PARIS)
    for state in states:
        store.commit(state, [])  # version 0: the conditional put of a new customer
    del states
    items = list(client.tables[CUSTOMERS].values())
    client.calls.clear()
    client.writes.clear()
    client.write_units.clear()
    client.item_units.clear()
    client.tables[MAIN].clear()  # the effects of settling: not today's
    gc.collect()
    gc.freeze()  # a worker holds one page of states, not a table: keep the collector out of it
    return Base(customers, Counter(kinds.values()), kinds, catalog, hist, rfm, client, store,
                items, time.perf_counter() - started)


EFFECT_KEYS = {"JOB": "messages", "COUPON": "coupons", "SEGMENT": "segment changes",
               "TIMER": "timers"}


def measure(base: Base, segments: int = SCAN_SEGMENTS, sample: int = 3000,
            seed: int = 3) -> Result:
    """Today's check over every scan segment of the stored table, with the real DailyWorker."""
    client, catalog = base.client, base.catalog
    sizes = _sizes(base.kinds, base.items)
    items_sorted = sorted(item_size(i) for i in base.items)
    picked = random.Random(seed).sample(base.items, min(sample, len(base.items)))
    breakdown = _breakdown(picked, catalog, base.rfm)

    client.read_units = 0.0
    fixed_rfm, handed = FixedRfm(base.histogram), Handed()
    worker = DailyWorker(store=base.store, scan=DynamoCustomerScan(client, CUSTOMERS),
                         work=handed, rfm=fixed_rfm, catalogs=Fixed(catalog), clock=Fixed(NOW),
                         zone=PARIS, count=lambda name, n: None, threads=8)
    day = NOW.astimezone(PARIS).date().isoformat()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = [worker.handle({"day": day, "segment": n, "total": segments}, lambda: 900.0)
               for n in range(segments)]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    reads = Counter({op: n for op, n in client.calls.items()
                     if op in ("GetItem", "Query", "BatchGetItem")})
    effects: Counter[str] = Counter()
    for pk, n in client.writes.items():
        kind = EFFECT_KEYS.get(pk.partition("#")[0])
        if kind:
            effects[kind] += n
    return Result(
        customers=base.customers, mix=base.mix, sizes=sizes,
        p95_item=items_sorted[int(0.95 * (len(items_sorted) - 1))], max_item=items_sorted[-1],
        build_seconds=base.seconds, cpu_seconds=cpu, wall_seconds=wall,
        checked=sum(r["checked"] for r in results), changed=sum(r["changed"] for r in results),
        read_units=sum(r["read_units"] for r in results), pages=client.calls["Scan"],
        other_reads=reads, rfm_reads=fixed_rfm.reads, handed_on=len(handed.items),
        write_units=sum(client.write_units.values()), sample=len(picked), effects=effects,
        **breakdown)


def _sizes(kinds: dict[str, str], items: list[dict[str, Any]]) -> dict[str, Sizes]:
    by_kind: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for item in items:
        doc = item["doc"]["B"]
        row = (len(state_codec.document(doc)), len(doc), item_size(item))
        by_kind[kinds.get(_subject(item["pk"]["S"]), "?")].append(row)
        by_kind["all"].append(row)
    return {kind: Sizes(*(sum(r[k] for r in rows) / len(rows) for k in range(3)))
            for kind, rows in by_kind.items()}


def _subject(pk: str) -> str:
    kind, _, ident = pk.partition("#")
    return f"{kind.lower()}:{ident}"


def _breakdown(items: list[dict[str, Any]], catalog: Catalog, rfm: RfmBoundaries,
               page: int = 500) -> dict[str, Any]:
    """Per customer, one thread, a scan page (500 states) at a time as the worker holds them:
    parse the stored item, decide, and commit (the store's serialising: model_dump_json, zlib,
    the effects' items; the writes dropped). Parsing again with the collector off tells what
    the garbage collector costs while a page of states is alive."""
    store = DynamoCustomerStore(NullDynamo(), MAIN, SEGMENT_SHARDS, customers_table=CUSTOMERS,
                                zone=PARIS)
    parse = decide = commit = bare = 0.0
    changed = 0
    for k in range(0, len(items), page):
        chunk = items[k:k + page]
        t0 = time.process_time()
        states = [state_from_item(i) for i in chunk]
        t1 = time.process_time()
        decisions = [daily(s, catalog, NOW, PARIS, rfm) for s in states]
        t2 = time.process_time()
        # every customer's commit, whether or not today changed them: a day when all do
        for state in states:
            store.commit(state, [], before=state)
        t3 = time.process_time()
        changed += sum(not d.duplicate for d in decisions)
        parse, decide, commit = parse + t1 - t0, decide + t2 - t1, commit + t3 - t2
        del states, decisions
        gc.disable()
        try:
            t4 = time.process_time()
            states = [state_from_item(i) for i in chunk]
            bare += time.process_time() - t4
        finally:
            gc.enable()
        del states
    n = len(items)
    return {"parse_us": parse / n * 1e6, "decide_us": decide / n * 1e6,
            "commit_us": commit / n * 1e6, "gc_us": (parse - bare) / n * 1e6,
            "sample_changed": changed}


# --- the report -----------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(r: Result, results: dict[str, bool] | None = None) -> None:
    results = results if results is not None else {}
    mix = ", ".join(f"{kind} {n / r.customers:.0%}" for kind, n in sorted(
        r.mix.items(), key=lambda kv: -kv[1]))
    a = r.sizes["all"]
    print(f"   {r.customers:,} synthetic customers ({mix}), the shipped catalog, the day after "
          f"the last check; generated, settled and stored in {r.build_seconds:.0f} s")
    print(f"   state item: {a.item_bytes / 1024:.2f} KB on average (JSON {a.json_bytes / 1024:.1f}"
          f" KB, compressed {a.doc_bytes / 1024:.2f} KB), p95 {r.p95_item / 1024:.1f} KB, max "
          f"{r.max_item / 1024:.1f} KB; by kind: " + ", ".join(
              f"{k} {s.item_bytes / 1024:.2f} KB" for k, s in r.sizes.items() if k != "all"))
    print(f"   DailyWorker, {SCAN_SEGMENTS} scan segments one after the other, 8 threads, "
          f"in-memory DynamoDB: {r.checked:,} checked, {r.changed:,} written "
          f"({r.changed / r.checked:.1%}), {r.cpu_seconds:.1f} s CPU ({r.wall_seconds:.1f} s "
          "wall); effect rows: " + (", ".join(f"{k} {n}" for k, n in sorted(r.effects.items()))
                                    or "none"))
    print(f"   CPU per customer: {r.cpu_us:.0f} us -> {r.per_minute:,.0f} customers per minute "
          "per worker (one core)")
    print(f"   one thread, {r.sample:,} of the customers, by pages of 500: parse "
          f"{r.parse_us:.0f} us (the garbage collector {r.gc_us:.0f} of it), decide "
          f"{r.decide_us:.0f} us per customer, commit {r.commit_us:.0f} us per customer written "
          f"({r.sample_changed} of them were today)")
    print(f"   if every customer were written (a campaign's first day): the worker's {r.cpu_us:.0f}"
          f" us + {1 - r.changed / r.checked:.0%} x {r.commit_us:.0f} us = "
          f"{r.all_changed_us:.0f} us per customer, {60e6 / r.all_changed_us:,.0f} per minute")
    units = r.units_per_customer
    ok = units <= GOAL_READ_UNITS
    results["daily scan: read units per customer"] = ok
    print(f"   read units per customer: {units:.3f} ({r.read_units:,.1f} for {r.pages} scan "
          f"pages; other reads {sum(r.other_reads.values())}, RFM snapshot reads "
          f"{r.rfm_reads}, one per worker)   goal <= {GOAL_READ_UNITS}: {verdict(ok)}")
    if not ok:
        print(f"     a Scan charges 0.5 unit per 4 KB of items read: {GOAL_READ_UNITS} needs items"
              f" of {GOAL_READ_UNITS * 8:.0f} KB on average, these are {a.item_bytes / 1024:.2f}"
              " KB (see the sizes by kind)")
    workers = r.workers()
    every = math.ceil(TARGET_CUSTOMERS / (60e6 / r.all_changed_us * LAMBDA_MEMORY_MB
                                          / FULL_VCPU_MB * WORK_MINUTES))
    guidance = TARGET_CUSTOMERS // CUSTOMERS_PER_SEGMENT
    ok = max(workers, every) <= guidance
    results["daily check: 10 M within 15 min at 1 scan segment per 100,000"] = ok
    print(f"   on Lambda ({LAMBDA_MEMORY_MB} MB = {LAMBDA_MEMORY_MB / FULL_VCPU_MB:.2f} vCPU): "
          f"{r.lambda_per_minute():,.0f} customers per minute per worker; "
          f"{TARGET_CUSTOMERS / 1e6:.0f} M customers in {WORK_MINUTES} min of work need "
          f"DailyScanSegments >= {workers} ({every} if every customer is written; "
          f"{r.workers(FULL_VCPU_MB)} at {FULL_VCPU_MB} MB)")
    print(f"     the template's guidance, 1 per {CUSTOMERS_PER_SEGMENT:,} customers, gives "
          f"{guidance} for {TARGET_CUSTOMERS / 1e6:.0f} M: {verdict(ok)}; its default 16 covers "
          f"{16 * r.lambda_per_minute() * WORK_MINUTES / 1e6:.1f} M customers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS_DEFAULT)
    args = parser.parse_args(argv)
    print("Daily check: customers per minute per worker, read units per customer")
    report(measure(build(args.customers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
