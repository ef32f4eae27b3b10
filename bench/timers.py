"""Step Functions executions for a million waits spread over a month.

1,000,000 WaitStarted due times: 70 % spread evenly over 30 days (waits of an hour to two weeks),
30 % in one hour — a campaign the daily check starts at 02:00 in Paris, whose customers all
wait 4 days (the red label sale's reminder). Each wait's timer row reaches the arm function as
the template wires it (table stream → DispatchFunction → TimersQueue → ArmFunction, batches of up to
100 rows or 5 s), after a second or two, and 0.05 % of them hours late (a pipe backlog or a
redelivery). The arm containers run the real `ArmService` and `StepFunctionsWaker` against a
fake Step Functions with AWS's naming rules: a start with the name and input of a running
execution returns it (no new execution), a start with the name of a closed one fails with
ExecutionAlreadyExists. Five SQS pollers each keep a container warm; a container idle for
10 minutes, or 2 hours old, is replaced by a cold one, which knows no bucket.

The buckets are the store's (`bucket_end` rounded up to 15 minutes, `zulu`), checked on a sample
against the whole path: the real store's timer row, its stream record, `bucket_of_stream_record`.
State transitions per execution are counted by walking infra/statemachines/wake.asl.json, with
the bucket's timers per shard (`keys.shard`, TimerShards 16) read 200 to a page.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from dialogue.aws import keys
from dialogue.aws.dynamo import DynamoCustomerStore, zulu
from dialogue.aws.timers import StepFunctionsWaker, bucket_of_stream_record
from dialogue.engine.timers import EPOCH, TimerRef, bucket_end
from dialogue.model.effects import WaitStarted
from dialogue.services import ArmService

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "infra" / "statemachines" / "wake.asl.json"
ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:dialogue-wake"
WAITS = 1_000_000
DAYS = 30
START = datetime(2026, 12, 1, tzinfo=UTC)
BURST_SHARE = 0.30
BURST_DAY = 12  # the campaign starts at the daily check of 13 December (02:00 in Paris)
BURST_WAIT = timedelta(days=4)
# (weight, wait): the waits of the even part
WAIT_MIX = [(10, timedelta(hours=1)), (20, timedelta(days=1)), (20, timedelta(days=3)),
            (10, timedelta(days=4)), (30, timedelta(weeks=1)), (10, timedelta(weeks=2))]
LATE_SHARE = 0.0005  # rows that reach the arm function hours late
BUCKET_MINUTES = 15  # TimerBucketMinutes
TIMER_SHARDS = 16  # TimerShards
PAGE = 200  # DynamoTimers.page's limit
BATCH, WINDOW = 100, 5.0  # the arm function's BatchSize and MaximumBatchingWindowInSeconds
POLLERS = 5  # an SQS event source starts with five pollers
IDLE, LIFE = 600.0, 7200.0  # seconds before a container is replaced
CALL_SECONDS, BATCH_SECONDS = 0.05, 0.02  # an AWS call, the rest of an invocation
WAKE_SECONDS = 60.0  # an execution stays open this long after its bucket ends
PRICE = 0.025 / 1000  # per state transition, Standard workflows
OPEN_QUOTA = 1_000_000  # open executions per account
GOAL_EXECUTIONS = 3000


# --- the waits ---------------------------------------------------------------------------------
@dataclass
class Waits:
    created: list[float]  # epoch seconds
    due: list[float]
    arrives: list[float]  # when the timer row reaches the arm function's queue
    burst: int  # how many of them are the campaign's


def waits(n: int = WAITS, seed: int = 5) -> Waits:
    r = random.Random(seed)
    start, span = START.timestamp(), DAYS * 86400
    weights = [w for w, _ in WAIT_MIX]
    lengths = [d.total_seconds() for _, d in WAIT_MIX]
    n_burst = round(n * BURST_SHARE)
    check = (START + timedelta(days=BURST_DAY, hours=1)).timestamp()  # 02:00 in Paris, in UTC
    created, due = [], []
    for _ in range(n_burst):  # entered while the check runs, and the wake-ups it sets off
        c = check + r.uniform(0, 3600)
        created.append(c)
        due.append(c + BURST_WAIT.total_seconds())
    for length in r.choices(lengths, weights=weights, k=n - n_burst):
        d = start + r.uniform(0, span)
        created.append(d - length)
        due.append(d)
    arrives = [c + r.uniform(0.2, 2.0) + (r.uniform(600, 4 * 3600) if r.random() < LATE_SHARE
                                          else 0.0) for c in created]
    return Waits(created, due, arrives, n_burst)


def bucket_seconds(due: float, minutes: int = BUCKET_MINUTES) -> int:
    """The end of `due`'s bucket in epoch seconds (the sample check below ties it to the store)."""
    step = minutes * 60
    return -(-math.ceil(due) // step) * step


def check_against_store(w: Waits, sample: int = 5000) -> int:
    """The bucket of a sample of waits, through the whole path: the real store's timer row for
    a WaitStarted, the stream record the dispatcher relays, `bucket_of_stream_record`. Returns how
    many were checked; raises if one differs from `bucket_seconds`."""
    store = DynamoCustomerStore(None, "main", 16, bucket_minutes=BUCKET_MINUTES,
                                timer_shards=TIMER_SHARDS)
    step = max(1, len(w.due) // sample)
    checked = 0
    for i in range(0, len(w.due), step):
        due = datetime.fromtimestamp(w.due[i], UTC)
        effect = WaitStarted.model_construct(activity_id="red-label-sale", element_id="wait",
                                             subject=_subject(i), entry=1,
                                             at=datetime.fromtimestamp(w.created[i], UTC),
                                             due_at=due)
        [write] = store._effect_writes(effect.subject, [effect])
        body = json.dumps({"eventName": "INSERT", "dynamodb": {"NewImage": write["Put"]["Item"]}})
        bucket = bucket_of_stream_record(body)
        expected = _zulu(bucket_seconds(w.due[i]))
        assert bucket == expected == zulu(bucket_end(due, BUCKET_MINUTES)), (bucket, expected)
        shard = int(write["Put"]["Item"]["pk"]["S"].rsplit("#", 1)[1])
        assert shard == keys.shard(_timer_key(i), TIMER_SHARDS)
        checked += 1
    return checked


def _subject(i: int) -> str:
    return f"customer:c{i:08d}"


def _timer_key(i: int) -> str:
    return TimerRef(_subject(i), "red-label-sale", 1, "wait", EPOCH).key


_ZULU: dict[int, str] = {}


def _zulu(seconds: int) -> str:
    if seconds not in _ZULU:
        _ZULU[seconds] = zulu(datetime.fromtimestamp(seconds, UTC))
    return _ZULU[seconds]


# --- Step Functions, as far as arming goes -------------------------------------------------------
@dataclass
class Execution:
    name: str
    input: str
    started: float
    closes: float
    late: bool


@dataclass
class FakeStepFunctions:
    """StartExecution and DescribeExecution with AWS's rules for names (Standard workflows)."""

    now: float = 0.0
    executions: dict[str, Execution] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        self.calls["StartExecution"] += 1
        found = self.executions.get(name)
        if found is not None:
            if found.closes > self.now and found.input == input:
                self.answers["same name and input while running: that execution"] += 1
                return {"executionArn": self._arn(name), "startDate": found.started}
            self.answers["ExecutionAlreadyExists"] += 1
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists",  # type: ignore[typeddict-item]
                                         "Message": name}}, "StartExecution")
        wake_at = json.loads(input)["wake_at"]
        ends = datetime.fromisoformat(wake_at.replace("Z", "+00:00")).timestamp()
        self.executions[name] = Execution(name, input, self.now,
                                          max(ends, self.now) + WAKE_SECONDS, "-late-" in name)
        self.answers["started"] += 1
        return {"executionArn": self._arn(name), "startDate": self.now}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.calls["DescribeExecution"] += 1
        found = self.executions[executionArn.rsplit(":", 1)[1]]
        return {"executionArn": executionArn,
                "status": "RUNNING" if found.closes > self.now else "SUCCEEDED"}

    @staticmethod
    def _arn(name: str) -> str:
        return ARN.replace(":stateMachine:", ":execution:") + ":" + name


class Clock:
    def __init__(self) -> None:
        self.at = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)


@dataclass
class Container:
    service: ArmService
    born: float
    free_at: float


# --- the state machine's transitions --------------------------------------------------------------
def transitions(definition: dict[str, Any], invocations: list[int]) -> int:
    """States entered by one execution of `definition` whose Map runs one item per shard, the
    shard's task called `invocations[shard]` times (`more` true but the last time)."""
    count = 0

    def run(machine: dict[str, Any], more: Iterator[bool] | None) -> None:
        nonlocal count
        name: str | None = machine["StartAt"]
        output: dict[str, Any] = {}
        while name is not None:
            state = machine["States"][name]
            count += 1
            match state["Type"]:
                case "Wait" | "Pass":
                    pass
                case "Map":
                    for calls in invocations:
                        run(state["ItemProcessor"], iter([True] * (calls - 1) + [False]))
                case "Task":
                    assert more is not None
                    output = {"more": next(more)}
                case "Choice":
                    name = next((c["Next"] for c in state["Choices"]
                                 if output.get(c["Variable"].removeprefix("$."))
                                 == c["BooleanEquals"]), state.get("Default"))
                    continue
                case "Succeed" | "Fail":
                    return
                case other:
                    raise ValueError(f"state type {other} is not simulated")
            name = None if state.get("End") else state["Next"]

    run(definition, None)
    return count


def per_customer_transitions(definition: dict[str, Any]) -> int:
    """The same wake-up with one execution per customer: the Map's item processor run once
    (one customer, one call) after the Wait, without the Map state itself."""
    processor = next(s["ItemProcessor"] for s in definition["States"].values()
                     if s["Type"] == "Map")
    waits_ = sum(1 for s in definition["States"].values() if s["Type"] == "Wait")
    return waits_ + _processor_once(processor)


def _processor_once(processor: dict[str, Any]) -> int:
    machine = {"StartAt": "Map", "States": {"Map": {"Type": "Map", "ItemProcessor": processor,
                                                    "End": True}}}
    return transitions(machine, [1]) - 1  # less the Map state this wrapper adds


# --- the simulation ----------------------------------------------------------------------------
@dataclass
class Result:
    waits: int
    burst: int
    checked: int  # waits whose bucket was checked through the store's whole path
    batches: int
    containers: int  # arm containers started
    calls: Counter[str]
    answers: Counter[str]
    outcomes: Counter[str]  # ArmService's per bucket: started / running / late
    executions: int
    late_executions: int
    buckets: int  # distinct buckets with a timer
    cold_upper: int  # StartExecution calls if every batch ran on a cold container
    max_open: int
    max_open_at: float
    per_customer_open: int  # waits pending at once: open executions with one per customer
    transitions_low: int  # one wake invocation per shard
    transitions_high: int  # one invocation per page
    transitions_customer: int  # per execution, one execution per customer
    seconds: float
    pages_max: int  # pages of the busiest shard of a bucket
    timers_max: int  # timers in the busiest bucket

    def cost(self, transitions: int) -> float:
        return transitions * PRICE


def simulate(n: int = WAITS, seed: int = 5) -> Result:
    started = time.perf_counter()
    w = waits(n, seed)
    checked = check_against_store(w)
    buckets = [bucket_seconds(d) for d in w.due]
    order = sorted(range(n), key=w.arrives.__getitem__)

    sfn, clock = FakeStepFunctions(), Clock()
    outcomes: Counter[str] = Counter()

    def count(name: str, k: int) -> None:
        outcomes[name.removeprefix("Buckets_")] += k

    def container(at: float) -> Container:
        waker = StepFunctionsWaker(sfn, ARN, TIMER_SHARDS)
        return Container(ArmService(waker, clock, count), born=at, free_at=at)

    pollers: list[Container | None] = [None] * POLLERS
    containers = batches = cold_upper = 0
    i = 0
    while i < n:  # an SQS batch: up to 100 rows, or what arrived within 5 s of the first
        first = w.arrives[order[i]]
        j = i + 1
        while j < n and j - i < BATCH and w.arrives[order[j]] <= first + WINDOW:
            j += 1
        ready = first + WINDOW if j - i < BATCH else w.arrives[order[j - 1]]
        bodies = [_zulu(buckets[k]) for k in order[i:j]]
        p = batches % POLLERS
        c = pollers[p]
        if c is None or ready - c.free_at > IDLE or ready - c.born > LIFE:
            c = pollers[p] = container(ready)
            containers += 1
        at = max(ready, c.free_at)
        clock.at = sfn.now = at
        before = sum(sfn.calls.values())
        c.service.handle(list(bodies))
        c.free_at = at + BATCH_SECONDS + CALL_SECONDS * (sum(sfn.calls.values()) - before)
        cold_upper += len(set(bodies))
        batches += 1
        i = j

    # open executions at once: +1 at the start, -1 at the close
    events = sorted([(e.started, 1) for e in sfn.executions.values()]
                    + [(e.closes, -1) for e in sfn.executions.values()])
    open_now = max_open = 0
    max_at = 0.0
    for at, step in events:
        open_now += step
        if open_now > max_open:
            max_open, max_at = open_now, at
    per_customer = max_pending(w.created, w.due)

    # transitions: every execution wakes its bucket's 16 shards, 200 timers a page
    per_shard: dict[int, list[int]] = defaultdict(lambda: [0] * TIMER_SHARDS)
    for k in range(n):
        per_shard[buckets[k]][keys.shard(_timer_key(k), TIMER_SHARDS)] += 1
    definition = json.loads(ASL.read_text(encoding="utf-8"))
    low = high = 0
    one_each = transitions(definition, [1] * TIMER_SHARDS)
    for e in sfn.executions.values():
        bucket = int(datetime.fromisoformat(json.loads(e.input)["bucket"].replace(
            "Z", "+00:00")).timestamp())
        pages = [t // PAGE + 1 for t in per_shard[bucket]]  # a full last page asks once more
        low += one_each
        high += transitions(definition, pages)
    pages_max = max(t // PAGE + 1 for shards in per_shard.values() for t in shards)
    return Result(
        waits=n, burst=w.burst, checked=checked, batches=batches, containers=containers,
        calls=sfn.calls, answers=sfn.answers, outcomes=outcomes,
        executions=len(sfn.executions),
        late_executions=sum(e.late for e in sfn.executions.values()),
        buckets=len(per_shard), cold_upper=cold_upper, max_open=max_open, max_open_at=max_at,
        per_customer_open=per_customer, transitions_low=low, transitions_high=high,
        transitions_customer=per_customer_transitions(definition),
        seconds=time.perf_counter() - started, pages_max=pages_max,
        timers_max=max(sum(s) for s in per_shard.values()))


def max_pending(created: list[float], due: list[float]) -> int:
    """The most waits pending at one moment (each from its creation to its due time)."""
    starts, ends = sorted(created), sorted(due)
    best = 0
    for k, at in enumerate(starts):  # just after the k-th start: starts so far - ends so far
        best = max(best, k + 1 - bisect.bisect_right(ends, at))
    return best


# --- the report ----------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(r: Result, results: dict[str, bool] | None = None) -> None:
    results = results if results is not None else {}
    print(f"   {r.waits:,} waits due over {DAYS} days from {START:%Y-%m-%d} ({r.burst:,} of them "
          f"in one hour: a campaign's {BURST_WAIT.days}-day wait), {BUCKET_MINUTES}-minute "
          f"buckets, {TIMER_SHARDS} timer shards; buckets checked through the store's timer row "
          f"and stream record on {r.checked:,} of them; {r.seconds:.0f} s")
    print(f"   arm: {r.batches:,} SQS batches on {r.containers:,} containers ({POLLERS} pollers,"
          f" replaced after {IDLE / 60:.0f} min idle or {LIFE / 3600:.0f} h); per bucket: "
          + ", ".join(f"{k} {n:,}" for k, n in sorted(r.outcomes.items())))
    ok = r.executions <= GOAL_EXECUTIONS
    results["timers: executions for 1 M waits"] = ok
    print(f"   executions started: {r.executions:,} for {r.buckets:,} buckets with timers "
          f"({r.late_executions} late: rows that came after their bucket's execution had "
          f"closed)   goal <= {GOAL_EXECUTIONS:,}: {verdict(ok)}")
    answers = ", ".join(f"{k} {n:,}" for k, n in sorted(r.answers.items()))
    print(f"   StartExecution calls: {r.calls['StartExecution']:,} ({answers}); "
          f"DescribeExecution {r.calls['DescribeExecution']:,}; a cold container for every "
          f"batch would make {r.cold_upper:,}")
    low, high = r.transitions_low, r.transitions_high
    print(f"   state transitions (wake.asl.json walked): {low / r.executions:.0f} per execution "
          f"with one wake call per shard, up to {high / r.executions:.1f} with one call per page"
          f" of {PAGE} (busiest bucket {r.timers_max:,} timers, {r.pages_max} pages on its "
          f"busiest shard)")
    per_customer = r.waits * r.transitions_customer
    print(f"   Step Functions cost for the month: ${r.cost(low):,.2f} to ${r.cost(high):,.2f}; "
          f"one execution per customer ({r.transitions_customer} transitions each): "
          f"${r.cost(per_customer):,.2f} ({r.cost(per_customer) / r.cost(high):,.0f}x)")
    ok = r.max_open <= OPEN_QUOTA / 100
    results["timers: open executions far below 1 M"] = ok
    at = datetime.fromtimestamp(r.max_open_at, UTC)
    print(f"   open executions at once: at most {r.max_open:,} ({at:%Y-%m-%d %H:%M} UTC); one "
          f"per customer: {r.per_customer_open:,} of the {OPEN_QUOTA:,} quota   goal far below "
          f"(<= 1 %): {verdict(ok)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=WAITS)
    args = parser.parse_args(argv)
    print("Timers: Step Functions executions for 1 M waits over a month")
    report(simulate(args.waits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
