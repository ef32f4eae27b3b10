"""The embedded AWS's rate: events per second through the real path (LocalAws.put_events, then
drain: EventBridge → SQS → on_event → DynamoDB → stream → pipes) once the customers table holds
10,000 customers' states, with the item-by-item rollback of local/dynamodb_transactions.py and,
for comparison on fewer events, with moto's own (a deep copy of each table per item).

Run alone: `.venv/bin/python bench/local_rate.py [--customers N] [--events N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import resource
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dialogue import bootstrap
from dialogue.aws import keys, state_codec
from dialogue.local import dynamodb_transactions
from dialogue.local.runtime import LocalAws
from dialogue.local.template import ACCOUNT, REGION
from dialogues import activities, segments
from workload import EventMaker, customer_state, utc_now

CUSTOMERS = 10_000
EVENTS = 600  # timed with the journal's rollback
MOTO_EVENTS = 100  # timed with moto's rollback (slow: fewer)
MEMORY_EVENTS = 300  # traced (tracemalloc slows them: not timed)
BATCH = 50  # published, then drained, as a shop's traffic arrives


@dataclass
class Result:
    customers: int
    fill_seconds: float
    journal: Run  # the item-by-item rollback
    retained: dict[str, int]  # what moto holds after the run (local/retention.py bounds it)
    growth: float = 0.0  # bytes still allocated per event after MEMORY_EVENTS more (tracemalloc)
    holders: list[str] = field(default_factory=list)  # the files holding most of it
    moto: Run | None = None  # moto's own


def fill(aws: LocalAws, customers: int) -> float:
    """`customers` registered customers with some history (bench/workload.customer_state, each
    under its own id), written straight into the embedded table: the size a shop's table has,
    without publishing their past."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    started = time.monotonic()
    table = dynamodb_backends[ACCOUNT][REGION].get_table(aws.s.name("CustomersTable"))
    template = customer_state(utc_now())
    for i in range(customers):
        state = template.model_copy(update={"subject": f"customer:c{i:05d}"})
        attrs: dict[str, Any] = {**keys.state_key(state.subject), "kind": {"S": "state"},
                 "version": {"N": str(state.version)}, "doc": {"B": state_codec.encode(state)}}
        hash_key, range_key = DynamoType(attrs["pk"]), DynamoType(attrs["sk"])
        table.items[hash_key][range_key] = Item(hash_key, range_key, attrs)
    return time.monotonic() - started


@dataclass
class Run:
    events: int = 0
    seconds: float = 0.0  # wall clock
    cpu: float = 0.0  # the process's CPU time (the moto server runs in it): steadier on a
    transactions: int = 0  # shared machine

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.events if self.events else 0.0


def _timed(aws: LocalAws, stream: list[dict[str, Any]]) -> Run:
    before = _transactions()
    started, cpu = time.monotonic(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # the functions' metrics (EMF lines)
        for i in range(0, len(stream), BATCH):
            aws.put_events(stream[i:i + BATCH])
            aws.drain()
    return Run(len(stream), time.monotonic() - started, time.process_time() - cpu,
               _transactions() - before)


TRANSACTIONS = [0]


def _transactions() -> int:
    return TRANSACTIONS[0]


def _count_transactions() -> None:
    """Count TransactWriteItems requests (whichever rollback is installed)."""
    from moto.dynamodb.models import DynamoDBBackend

    current = DynamoDBBackend.transact_write_items
    if getattr(current, "_counted", False):
        return

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        TRANSACTIONS[0] += 1
        return current(self, *args, **kwargs)

    counted._counted = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = counted  # type: ignore[method-assign]


def _use_moto_rollback(on: bool) -> None:
    """Swap moto's own TransactWriteItems (serialised) in or out under the counter."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    DynamoDBBackend.transact_write_items = dynamodb_transactions._serialised(  # type: ignore[method-assign]
        dynamodb_transactions.MOTO["transact_write_items"] if on
        else dynamodb_transactions.transact_write_items)
    if "__deepcopy__" in vars(StreamShard):  # bench/aws_calls shares the stream: moto as it is
        del StreamShard.__deepcopy__  # type: ignore[attr-defined]
    _count_transactions()


def retained() -> dict[str, int]:
    """What moto holds that a run's events add to: stream records not yet released, shard
    iterators, receipt handles of deleted messages, messages still queued."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodbstreams.models import dynamodbstreams_backends
    from moto.sqs.models import sqs_backends

    tables = dynamodb_backends[ACCOUNT][REGION].tables.values()
    queues = sqs_backends[ACCOUNT][REGION].queues.values()
    return {
        "stream records": sum(len(t.stream_shard.items) for t in tables if t.stream_shard),
        "shard iterators": len(dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators),
        "deleted receipt handles": sum(len(q.deleted_messages) for q in queues),
        "queued messages": sum(len(q._messages) for q in queues),
    }


def _growth_per_event(aws: LocalAws, stream: list[dict[str, Any]]) -> tuple[float, list[str]]:
    """Bytes allocated during the second half of `stream` and still held after it
    (tracemalloc, after a collection; the first half warms what is allocated once), per event,
    and the source files holding the most of it."""
    half = len(stream) // 2
    tracemalloc.start(1)
    try:
        _timed(aws, stream[:half])
        gc.collect()
        before = tracemalloc.take_snapshot()
        _timed(aws, stream[half:])
        gc.collect()
        diff = tracemalloc.take_snapshot().compare_to(before, "filename")
    finally:
        tracemalloc.stop()
    events = len(stream) - half
    top = [f"{_short(d.traceback[0].filename)} {d.size_diff / events / 1024:.1f}"
           for d in sorted(diff, key=lambda d: -d.size_diff)[:4]]
    return sum(d.size_diff for d in diff) / events, top


def _short(path: str) -> str:
    for marker in ("site-packages/", "layers/engine/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def measure(customers: int = CUSTOMERS, events: int = EVENTS,
            moto_events: int = MOTO_EVENTS) -> Result:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, docs in (("activities", activities(20)), ("segments", segments(20))):
            folder = Path(tmp) / name
            folder.mkdir()
            for doc in docs:
                (folder / f"{doc['id']}.json").write_text(json.dumps(doc))
            folders[name] = sorted(folder.iterdir())
        aws = LocalAws().start()
        try:
            aws.upload_catalog(folders["activities"], folders["segments"])
            bootstrap.use_clock(bootstrap.SystemClock())
            fill_seconds = fill(aws, customers)
            maker = EventMaker(seed=2026, start=utc_now() - timedelta(hours=6))
            _use_moto_rollback(False)
            _timed(aws, maker.stream(BATCH, customers))  # warm-up: imports, catalog load
            result = Result(customers, fill_seconds, _timed(aws, maker.stream(events, customers)),
                            retained())
            result.growth, result.holders = _growth_per_event(
                aws, maker.stream(MEMORY_EVENTS, customers))
            if moto_events:
                _use_moto_rollback(True)
                try:
                    result.moto = _timed(aws, maker.stream(moto_events, customers))
                finally:
                    _use_moto_rollback(False)
        finally:
            aws.stop()
    return result


def report(r: Result) -> None:
    j = r.journal
    print(f"   {r.customers:,} customers' states in the customers table (filled in "
          f"{r.fill_seconds:.0f} s), the bench's 20 activities; {j.events} events through "
          f"put_events + drain, {BATCH} at a time")
    print(f"   events per second: {j.rate:.1f}   ({j.seconds:.1f} s; {j.cpu_ms:.0f} ms CPU per "
          f"event; {j.transactions} transactions; item-by-item rollback)")
    print(f"   memory kept per event: {r.growth / 1024:.1f} KiB (tracemalloc, the last "
          f"{MEMORY_EVENTS // 2} of {MEMORY_EVENTS} more events; KiB per event by file: "
          f"{', '.join(r.holders)}); peak RSS {_peak_rss_mb():.0f} MB")
    print("   moto holds after the timed run: "
          + ", ".join(f"{k} {n:,}" for k, n in r.retained.items()))
    if r.moto is not None:
        m = r.moto
        print(f"   with moto's own rollback (each touched table copied per item), {m.events} "
              f"events: {m.rate:.2f} events per second ({m.seconds:.1f} s; {m.cpu_ms:.0f} ms CPU "
              f"per event; {m.transactions} transactions): {m.cpu_ms / j.cpu_ms:.1f}x the CPU "
              f"per event, {_extra_ms(m, j):.0f} ms more CPU per transaction")


def _extra_ms(moto: Run, journal: Run) -> float:
    """moto's extra CPU per transaction: its run's CPU beyond the journal's rate per event."""
    extra = moto.cpu - journal.cpu / journal.events * moto.events
    return 1000 * extra / moto.transactions if moto.transactions else 0.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--moto-events", type=int, default=MOTO_EVENTS,
                        help="events timed with moto's own rollback (0: skip)")
    args = parser.parse_args()
    print("The embedded AWS's rate at scale (local runtime)")
    report(measure(args.customers, args.events, args.moto_events))


if __name__ == "__main__":
    main()
