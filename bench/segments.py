"""Segments at scale: evaluation rate per core, hot keys of a 5 M-member segment, reads per day.

(a) Every shipped rule segment (examples/segments, compiled once per catalog as `refresh` does)
    evaluated for each customer of the daily bench's synthetic base, one thread,
    `time.process_time`, best of 3 rounds (2 for refresh): on states already parsed, then with
    the parse of the stored item (zlib + model_validate_json, a scan page of 500 at a time, on
    3,000 of them) included.
(b) A 5 M-member segment (re)filled within 15 minutes: the member rows' partition keys are
    `SEGMENT#<segment>#<shard>` (`keys.segment_member_key`, SegmentShards = 16 in the
    template). A sample of joins goes through the real store's commit into the in-memory
    DynamoDB (`daily.FakeDynamo`), which counts write units per partition key and per item;
    the shard of each of the 5 M subjects is computed with the real `keys.shard`.
(c) Read units per customer per daily run: the refresh runs inside `daily()` on the states the
    daily scan has already read, so it is the daily scan's figure; the run is checked to make no
    other read, and the RFM cut points come from one histogram snapshot per worker.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import daily  # bench/ is on sys.path: it is the script's folder
from dialogue.aws import keys
from dialogue.aws.dynamo import DynamoCustomerStore, state_from_item
from dialogue.engine.decide import writable
from dialogue.engine.fields import Facts
from dialogue.engine.segments import program, refresh
from dialogue.model.customer import CustomerState
from dialogue.model.effects import SegmentAdded

GOAL_PER_MINUTE = 1_000_000  # customers per minute per 1-core worker, every rule segment
MEMBERS = 5_000_000
FILL_SECONDS = 15 * 60
PARTITION_WCU = 1000  # write units per second a DynamoDB partition takes
HEADROOM = 0.5  # stay under half of it
TEMPLATE_SHARDS = 32  # infra/template.yaml SegmentShards default
SAMPLE_JOINS = 20_000
SEGMENT = "big-segment"


def best(fn: Callable[[], object], rounds: int = 3) -> float:
    """Fastest CPU seconds of `rounds` calls of fn."""
    fastest = math.inf
    for _ in range(rounds):
        start = time.process_time()
        fn()
        fastest = min(fastest, time.process_time() - start)
    return fastest


# --- (a) evaluation ------------------------------------------------------------------------------
@dataclass
class Evaluation:
    customers: int
    rule_segments: int
    uses_rfm: int
    evaluate_us: float  # per customer, every rule segment, states parsed
    refresh_us: float  # refresh(): writable copy, evaluation, membership changes
    parse_us: float  # per customer: state_from_item, a page of 500 at a time
    memberships: Counter[str]  # rule segments → members among these customers
    by_kind: dict[str, float]  # evaluation per customer, by kind of customer
    alone: dict[str, float]  # each segment evaluated on its own, per customer

    @property
    def per_minute(self) -> float:
        return 60e6 / self.evaluate_us

    @property
    def with_parse_per_minute(self) -> float:
        return 60e6 / (self.evaluate_us + self.parse_us)


def evaluation(base: daily.Base) -> Evaluation:
    catalog, rfm, now = base.catalog, base.rfm, daily.NOW
    compiled = program(catalog)
    gc.disable()  # parsed before the clock, all kept: the collector would walk them, often
    try:
        parsed = [(base.kinds[s.subject], s) for s in map(state_from_item, base.items)]
    finally:
        gc.enable()
    states = [s for _, s in parsed]
    gc.freeze()

    def evaluate() -> None:
        for state in states:
            facts = Facts(state, now, rfm)
            for c in compiled:
                c.holds(facts)

    def refresh_all() -> None:
        for state in states:
            refresh(writable(state), catalog, now, rfm)

    n = len(states)
    evaluate_s, refresh_s = best(evaluate), best(refresh_all, rounds=2)
    members: Counter[str] = Counter()
    by_kind: dict[str, float] = {}
    for kind in sorted({k for k, _ in parsed}):
        group = [s for k, s in parsed if k == kind]
        start = time.process_time()
        for state in group:
            facts = Facts(state, now, rfm)
            members.update(c.segment.id for c in compiled if c.holds(facts))
        by_kind[kind] = (time.process_time() - start) / len(group) * 1e6
    alone: dict[str, float] = {}
    some = states[:3000]
    for c in compiled:  # each with facts of its own: what it costs when no other rule ran first
        start = time.process_time()
        for state in some:
            c.holds(Facts(state, now, rfm))
        alone[c.segment.id] = (time.process_time() - start) / len(some) * 1e6
    sample = base.items[:3000]
    parse_us = _parse_pages(sample) / len(sample) * 1e6
    return Evaluation(n, len(compiled), sum(c.uses_rfm for c in compiled), evaluate_s / n * 1e6,
                      refresh_s / n * 1e6, parse_us, members, by_kind, alone)


def _parse_pages(items: list[dict[str, Any]]) -> float:
    """CPU seconds to parse the stored items a scan page (500) at a time, as the worker does."""
    def pages() -> None:
        for k in range(0, len(items), 500):
            page = [state_from_item(i) for i in items[k:k + 500]]
            del page

    return best(pages, rounds=1)


# --- (b) a 5 M-member segment --------------------------------------------------------------------
@dataclass
class Fill:
    members: int
    sample: int
    writes_by_key: dict[str, int]  # the sample's writes per partition key of the main table
    units_by_key: dict[str, int]  # and their write units
    units_by_item: dict[tuple[str, str], int]
    shard_counts: dict[int, list[int]]  # shards → members per shard, all 5 M members
    minimum: int  # fewest shards whose busiest key stays under HEADROOM of a partition

    def member_units(self) -> float:
        """Write units per member row written (a Put in the state's transaction)."""
        keys_ = [k for k in self.writes_by_key if k.startswith(f"SEGMENT#{SEGMENT}#")]
        return sum(self.units_by_key[k] for k in keys_) / sum(self.writes_by_key[k] for k in keys_)

    def busiest(self, shards: int) -> float:
        """Write units per second on the busiest member key, the whole segment in 15 minutes."""
        return max(self.shard_counts[shards]) * self.member_units() / FILL_SECONDS


def fill(members: int = MEMBERS, sample: int = SAMPLE_JOINS) -> Fill:
    # The sample: customers joining the segment through the real store (state + member row +
    # the segment's statistics, in one transaction), counted per key by the fake.
    client = daily.FakeDynamo()
    store = DynamoCustomerStore(client, daily.MAIN, TEMPLATE_SHARDS,
                                customers_table=daily.CUSTOMERS, zone=daily.PARIS)
    now = daily.NOW
    for i in range(sample):
        state = CustomerState(subject=f"customer:c{i:08d}", last_daily=now.date() - timedelta(1))
        effect = SegmentAdded(activity_id="", element_id=SEGMENT, subject=state.subject, entry=0,
                              at=now, segment=SEGMENT)
        store.commit(state, [effect], before=state)
    main = {k: n for k, n in client.writes.items() if not k.startswith("CUSTOMER#")}
    units = {k: n for k, n in client.write_units.items() if k in main}
    # Every member's shard, with the real shard function: the full 32-bit hash, once.
    hashes = [keys.shard(f"customer:c{i:08d}", 1 << 32) for i in range(members)]
    counts: dict[int, list[int]] = {}

    def spread(shards: int) -> list[int]:
        if shards not in counts:
            tally = Counter(h % shards for h in hashes)
            counts[shards] = [tally[k] for k in range(shards)]
        return counts[shards]

    spread(TEMPLATE_SHARDS)
    spread(keys.COUNTER_SHARDS)  # the statistics rows' sort-key shards
    result = Fill(members, sample, main, units, dict(client.item_units), counts, 0)
    limit = PARTITION_WCU * HEADROOM
    shards = max(1, math.ceil(members * result.member_units() / FILL_SECONDS / limit))
    while max(spread(shards)) * result.member_units() / FILL_SECONDS > limit:
        shards += 1
    result.minimum = shards
    return result


# --- (c) reads per customer per daily run ---------------------------------------------------------
@dataclass
class Reads:
    units_per_customer: float
    other_reads: int | None  # reads the daily run made besides its scan pages
    rfm_reads: int | None  # RFM snapshot reads in that run
    source: str


def reads_from(r: daily.Result) -> Reads:
    return Reads(r.units_per_customer, sum(r.other_reads.values()), r.rfm_reads,
                 f"the daily bench's run over {r.checked:,} customers")


def reads_by_scanning(base: daily.Base, segments: int = daily.SCAN_SEGMENTS) -> Reads:
    """Without the daily bench's run: the same table scanned page by page, as it charges."""
    client, units, n = base.client, 0.0, 0
    for segment in range(segments):
        cursor: dict[str, Any] | None = None
        while True:
            page = client.scan(TableName=daily.CUSTOMERS, Segment=segment, TotalSegments=segments,
                               Limit=500, ExclusiveStartKey=cursor, ReturnConsumedCapacity="TOTAL")
            units += page["ConsumedCapacity"]["CapacityUnits"]
            n += page["Count"]
            cursor = page.get("LastEvaluatedKey")
            if cursor is None:
                break
    return Reads(units / n, None, None, f"a scan of the {n:,} stored customers, no daily run")


# --- the report -----------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(e: Evaluation, f: Fill, reads: Reads, results: dict[str, bool] | None = None) -> None:
    results = results if results is not None else {}
    ok = e.per_minute >= GOAL_PER_MINUTE
    results["segments: evaluation per minute per core"] = ok
    sizes = ", ".join(f"{s} {n / e.customers:.1%}" for s, n in e.memberships.most_common(6))
    print(f"   (a) {e.rule_segments} shipped rule segments ({e.uses_rfm} on RFM scores), "
          f"{e.customers:,} customers of the daily bench, one thread, best of 3 rounds")
    print(f"       evaluation, states parsed: {e.evaluate_us:.1f} us per customer -> "
          f"{e.per_minute:,.0f} customers per minute   goal >= {GOAL_PER_MINUTE:,}: "
          f"{verdict(ok)}")
    print(f"       refresh() (copy, evaluation, membership changes): {e.refresh_us:.1f} us -> "
          f"{60e6 / e.refresh_us:,.0f} per minute; with the parse of the stored item "
          f"({e.parse_us:.0f} us, pages of 500, 3,000 of them): "
          f"{e.with_parse_per_minute:,.0f} per minute")
    print("       by kind of customer (one round, counting members): " + ", ".join(
        f"{k} {us:.0f} us" for k, us in e.by_kind.items()))
    costly = sorted(e.alone.items(), key=lambda kv: -kv[1])[:4]
    print("       costliest rules evaluated alone: " + ", ".join(
        f"{s} {us:.0f} us" for s, us in costly) + " (alone, a rule pays for reading the "
        "histories it windows into timelines, which the rules evaluated together share)")
    print(f"       largest memberships: {sizes}")
    units = f.member_units()
    fits = f.busiest(TEMPLATE_SHARDS) <= PARTITION_WCU * HEADROOM
    big = f"{f.members / 1e6:g} M"
    results[f"segments: {big} members, busiest member key <= 50% of a partition"] = fits
    counts = f.shard_counts[TEMPLATE_SHARDS]
    print(f"   (b) {f.members / 1e6:.0f} M members written within {FILL_SECONDS // 60} min "
          f"({f.members / FILL_SECONDS:,.0f} joins/s): {units:.0f} write units per member row "
          f"(a Put in the customer's transaction; measured on {f.sample:,} joins)")
    print(f"       SegmentShards {TEMPLATE_SHARDS}: {min(counts):,}..{max(counts):,} members per "
          f"key, busiest key {max(counts) / FILL_SECONDS:,.0f} writes/s = "
          f"{f.busiest(TEMPLATE_SHARDS):,.0f} WCU/s of {PARTITION_WCU:,} "
          f"({f.busiest(TEMPLATE_SHARDS) / PARTITION_WCU:.0%})   goal <= {HEADROOM:.0%}: "
          f"{verdict(fits)}")
    print(f"       fewest shards under {HEADROOM:.0%}: {f.minimum} (busiest "
          f"{f.busiest(f.minimum):,.0f} WCU/s); the default {TEMPLATE_SHARDS} is "
          f"{'enough' if f.minimum <= TEMPLATE_SHARDS else 'not enough'} (it stays under "
          f"100 %: {'yes' if f.busiest(TEMPLATE_SHARDS) <= PARTITION_WCU else 'no'})")
    scale = f.members / f.sample
    others = sorted(((k, n) for k, n in f.units_by_key.items()
                     if not k.startswith(f"SEGMENT#{SEGMENT}#")), key=lambda kv: -kv[1])
    hot = False
    for key, n in others[:3]:
        rate = n * scale / FILL_SECONDS
        items = {sk: u for (pk, sk), u in f.units_by_item.items() if pk == key}
        per_item = max(items.values()) * scale / FILL_SECONDS  # the sample's share, scaled
        if key.startswith("SEGSTATS#") and len(items) == keys.COUNTER_SHARDS:
            # the same hash shards them: the busiest item of the 5 M, exactly
            per_write = n / f.writes_by_key[key]
            per_item = max(f.shard_counts[keys.COUNTER_SHARDS]) * per_write / FILL_SECONDS
        hot = hot or per_item > PARTITION_WCU * HEADROOM
        print(f"       other key written by every join: {key} ({len(items)} items): "
              f"{rate:,.0f} WCU/s on the key, {per_item:,.0f} on its busiest item"
              + ("  <- HOT: one partition takes 1,000" if per_item > PARTITION_WCU
                 else "  (more than a partition takes: only if DynamoDB splits the key's items"
                 " across partitions)" if rate > PARTITION_WCU else ""))
    ok = fits and not hot
    results[f"segments: no hot partition key when {big} join"] = ok
    print(f"       no hot partition key in the fill: {verdict(ok)}")
    ok = reads.units_per_customer <= daily.GOAL_READ_UNITS
    results["segments: read units per customer per daily run"] = ok
    extra = ("" if reads.other_reads is None else
             f"; reads besides the scan pages: {reads.other_reads}, RFM snapshot reads "
             f"{reads.rfm_reads} (one per worker: the cut points come from the histogram, "
             "not a second scan)")
    print(f"   (c) read units per customer per daily run: {reads.units_per_customer:.3f} "
          f"({reads.source}{extra})   goal <= {daily.GOAL_READ_UNITS}: {verdict(ok)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=daily.CUSTOMERS_DEFAULT)
    parser.add_argument("--members", type=int, default=MEMBERS)
    args = parser.parse_args(argv)
    print("Segments: evaluation per core, a 5 M-member segment's keys, read units per day")
    base = daily.build(args.customers)
    report(evaluation(base), fill(args.members), reads_by_scanning(base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
