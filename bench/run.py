"""`make bench`: the engine's cost figures, measured in one run, each against its goal.

1. AWS calls per on_event event, on the embedded AWS (moto server), with 20 active activities.
2. Engine CPU per event (`decide`) as a multiple of parsing the event (`parse_event`), at 10
   and at 100 active activities, and how flat that is.
3. The on_event handler's import time as a multiple of `import boto3` plus one client.
4. send_message's AWS calls per message sent (e-mail through SES, SMS through SNS), on the
   embedded AWS: at most one provider call and one DynamoDB write each.
5. Step Functions executions started for 1 M waits over a month (real ArmService and waker, a
   fake Step Functions with AWS's naming rules), their cost and the open executions at once.
6. The daily check: customers per minute per worker (the real DailyWorker on an in-memory
   DynamoDB), read units per customer of its scan, workers needed for 10 M in 15 minutes.
7. Segments: evaluation rate of the shipped rule segments per core, the partition keys a
   5 M-member segment writes, read units per customer per daily run.
8. The local runtime (embedded AWS): events per second at 10,000 customers, and against
   moto's own transaction rollback.
9. Dry runs at scale (issue 16): `dialogue simulate` on a synthetic shop of 10,000 customers over
   30 days at several event counts, one process each: events per second, peak RSS, the phases,
   RSS growth per 1,000 events, the month's projection; a CPU profile by package, the memory
   holders.

It reports and never asserts: a missed goal is printed as missed, with where the time goes.
See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import aws_calls  # bench/ is on sys.path: it is the script's folder
import daily
import delivery
import delivery_faults
import engine_cpu
import imports
import local_rate
import segments
import simulator
import simulator_profile
import timers

GOAL_CALLS = 2.0  # AWS calls per event, on average
GOAL_ENGINE = 3.0  # decide / parse_event
GOAL_FLAT = 1.25  # (decide/parse at 100 activities) / (at 10): ten times the activities
GOAL_IMPORT = 1.3  # handler import / (import boto3 + one client)
GOAL_PROVIDER = 1.0  # SES/SNS calls per message sent
# DynamoDB writes per message sent: the claim (with its lease) and the provider's confirmation
GOAL_DDB_WRITES = 2.0
OPERATIONS = ("GetItem", "PutItem", "TransactWriteItems", "ListObjectsV2", "GetObject",
              "SendMessage")
S3_OPERATIONS = ("ListObjectsV2", "GetObject", "HeadObject")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def section_calls(n_events: int, cache_seconds: float | None, results: dict[str, bool]) -> None:
    bare = aws_calls.measure(n_events=n_events, cache_seconds=cache_seconds, with_controls=False)
    r = aws_calls.measure(n_events=n_events, cache_seconds=cache_seconds)
    print(f"1. AWS calls per event: on_event on the embedded AWS (moto server), "
          f"{r.activities} active activities")
    ok = sum(r.steady.values()) <= sum(bare.steady.values())
    results["controls add no AWS call per event"] = ok
    print(f"   the same {r.events} events, activities without / with journey controls (quiet "
          f"hours, caps, holdout, goals, re-entry): {bare.per_event:.2f} / {r.per_event:.2f} "
          f"calls per event ({sum(bare.steady.values())} / {sum(r.steady.values())} calls; "
          f"actions {bare.with_action} / {r.with_action})   goal: none added: {verdict(ok)}")
    print(f"   {r.events} events after 1 warm-up event, in {r.seconds:.0f} s; "
          f"{r.with_action / r.events:.1%} fired an action, "
          f"{r.steady['TransactWriteItems'] / r.events:.1%} reached an activity")
    ok = r.per_event <= GOAL_CALLS
    results["AWS calls per event"] = ok
    print(f"   AWS calls per event: {r.per_event:.2f}   goal <= {GOAL_CALLS:g} on average: "
          f"{verdict(ok)}")
    print("   by operation: " + ", ".join(f"{op} {r.steady[op]}" for op in OPERATIONS)
          + _others(r.steady))
    s3 = sum(r.steady[op] for op in S3_OPERATIONS)
    ok = s3 == 0
    results["no S3 call once cached"] = ok
    print(f"   S3 calls while the activities are cached: {s3}   goal 0: {verdict(ok)}")
    refresh = (f"{r.refreshes}: " + ", ".join(f"{op} {n}" for op, n in sorted(
        r.refresh_ops.items())) + f" (+{r.per_event_with_refreshes - r.per_event:.4f} per event at "
        f"this run's {r.events / r.seconds:.0f} events/s)") if r.refreshes else "none"
    print(f"   catalog refreshes after the {r.catalog_ttl:g} s cache time, in {r.seconds:.0f} s: "
          f"{refresh}")
    print(f"   warm-up event (cold container, catalog load counted): {sum(r.warmup.values())} "
          f"calls: " + ", ".join(f"{op} {n}" for op, n in sorted(r.warmup.items())))
    print(f"   reads per event {r.steady['GetItem'] / r.events:.2f}, writes per event "
          f"{(r.steady['PutItem'] + r.steady['TransactWriteItems']) / r.events:.2f}; "
          f"events left in the queue: {r.queue_left}")


def _others(calls: Counter[str]) -> str:
    rest = {op: n for op, n in calls.items() if op not in OPERATIONS}
    return "".join(f", {op} {n}" for op, n in sorted(rest.items()))


def section_engine(results: dict[str, bool], profile: bool) -> None:
    print("2. Engine CPU per event: decide() / parse_event(), process CPU time, best of 5")
    bench = engine_cpu.Bench()
    figures = {n: bench.measure(n) for n in engine_cpu.SIZES}
    for n, f in figures.items():
        ok = f.ratio <= GOAL_ENGINE
        results[f"engine/parse at {n} activities"] = ok
        print(f"   engine/parse at {n} activities: {f.ratio:.1f}x   (decide {f.decide_us:.0f} us, "
              f"parse {f.parse_us:.1f} us per event; {f.acted:.0%} of the mix act)   "
              f"goal <= {GOAL_ENGINE:g}x: {verdict(ok)}")
    small, large = (figures[n] for n in engine_cpu.SIZES)
    flat = large.ratio / small.ratio
    ok = flat <= GOAL_FLAT
    results["flat in activities"] = ok
    print(f"   flatness (100 activities / 10): {flat:.2f}x   goal <= {GOAL_FLAT:g}x: {verdict(ok)}")
    if not (profile or any(f.ratio > GOAL_ENGINE for f in figures.values()) or not ok):
        return
    b = bench.breakdown()
    print(f"   around decide, in the store per event: load state {b.load_us:.0f} us "
          f"(model_validate_json), dump {b.dump_us:.0f} us (model_dump_json)")
    print(f"   cProfile, decide, {large.activities} activities, engine functions by cumulative "
          "time:")
    print(_indent(bench.profile(large.activities, top=14), "     "))


def section_imports(results: dict[str, bool], profile: bool) -> None:
    print("3. Handler import time: fresh interpreter per sample, median of 7, "
          "time around the import")
    f = imports.measure()
    ok = f.ratio <= GOAL_IMPORT
    results["handler import / (boto3 + client)"] = ok
    print(f"   handler import / (boto3 + client): {f.ratio:.2f}x   (handler {f.handler_ms:.0f} ms,"
          f" import boto3 + dynamodb client {f.boto3_ms:.0f} ms)   goal <= {GOAL_IMPORT:g}x: "
          f"{verdict(ok)}")
    if profile or not ok:
        print("   costliest imports under on_event_handler (-X importtime, cumulative ms):")
        for name, own, total in imports.top_imports():
            print(f"     {total:7.1f}  {name} (own {own:.1f})")


def section_delivery(customers: int, results: dict[str, bool]) -> None:
    r = delivery.measure(customers=customers)
    print("4. Delivery cost per message: send_message on the embedded AWS (moto server)")
    print(f"   {r.customers} customers registered, then ordered: {r.sent} messages sent "
          f"({r.jobs_sent('email')} e-mails after a coupon, {r.jobs_sent('sms')} SMS, "
          f"send_immediately) in {r.invocations} invocations, {r.seconds:.0f} s; MAX_SEND_RATE "
          f"{delivery.MAX_SEND_RATE} (the template's 14 / 2 containers would sleep: unit-tested)")
    provider = r.per_message(delivery.PROVIDER_OPS)
    ok = provider <= GOAL_PROVIDER
    results["SES/SNS calls per message"] = ok
    print(f"   SES/SNS calls per message: {provider:.2f} (goal <= {GOAL_PROVIDER:g}): "
          f"{verdict(ok)}")
    writes = r.per_message(delivery.DDB_WRITES)
    ok = writes <= GOAL_DDB_WRITES
    results["DynamoDB writes per message"] = ok
    print(f"   DynamoDB writes per message: {writes:.2f} (goal <= {GOAL_DDB_WRITES:g}): "
          f"{verdict(ok)}   (the claim with its lease, then the provider's confirmation)")
    print(f"   DynamoDB reads per message: {r.per_message(delivery.DDB_READS):.2f} "
          "(GetItem: the customer's state, the suppression list)")
    print(f"   other calls per message: PutEvents {r.per_message(('PutEvents',)):.2f} "
          f"(MessageSent), S3 {r.per_message(S3_OPERATIONS):.2f}, SQS "
          f"{r.per_message(('SendMessage',)):.2f}; all calls {r.total_per_message:.2f}")
    print("   by operation: " + ", ".join(f"{op} {r.calls[op]}" for op in delivery.OPERATIONS)
          + "".join(f", {op} {n}" for op, n in sorted(r.calls.items())
                    if op not in delivery.OPERATIONS))
    provider_calls = sum(r.calls[op] for op in delivery.PROVIDER_OPS)
    consistent = (provider_calls == r.sent == r.emails + r.sms == r.outcomes["MessageSent"]
                  and r.emails == r.jobs_sent("email") and r.sms == r.jobs_sent("sms"))
    print(f"   messages sent {provider_calls}, received by SES {r.emails} and SNS {r.sms}, jobs "
          f"marked sent {r.sent} (of {sum(r.jobs.values())}), MessageSent on the bus "
          f"{r.outcomes['MessageSent']}: {'consistent' if consistent else 'MISMATCH'}")
    others = {k: n for k, n in r.outcomes.items() if k != "MessageSent"}
    print("   outcome events from the table stream (DispatchFunction, not counted): "
          + (", ".join(f"{k} {n}" for k, n in sorted(others.items())) or "none")
          + f"; dead-lettered {r.dead_lettered}, left in the messages queue {r.queue_left}")
    refresh = (f"{r.refreshes}: " + ", ".join(f"{op} {n}" for op, n in sorted(
        r.refresh_ops.items()))) if r.refreshes else "none"
    print(f"   catalog refreshes after the {r.catalog_ttl:g} s cache time: {refresh}")
    print(f"   warm-up (cold container, catalog load counted): {sum(r.warmup.values())} calls "
          f"for {r.warmup_sent} messages: " + ", ".join(f"{op} {n}" for op, n in sorted(
              r.warmup.items())))


def section_delivery_faults(jobs: int, results: dict[str, bool]) -> None:
    t = delivery_faults.measure(jobs=jobs)
    f = delivery_faults.Faults()
    print("4b. Delivery fault run: send_message + reconciliation on moto's DynamoDB")
    print(f"   {t.jobs} jobs; provider {f.unavailable + f.rejected + f.timeout:.0%} failures "
          f"({f.unavailable:.0%} unavailable, {f.rejected:.0%} refused, {f.timeout:.0%} "
          f"timeout after accept), {f.kill:.0%} of invocations killed, {f.lost_reply:.0%} "
          f"DynamoDB replies lost, {f.twice:.0%} jobs delivered twice (late)")
    print("   injected: " + ", ".join(f"{k} {n}" for k, n in sorted(t.injected.items())))
    ok = t.lost == 0 and t.sent_twice == 0 and t.false_sent == 0 and t.wrong_outcome == 0
    results["delivery: 0 lost, 0 twice"] = ok
    print(f"   sent once {t.sent_once} (of which dead-lettered as outcome unknown "
          f"{t.unknown_dead_lettered}), sent twice {t.sent_twice}, not sent and dead-lettered "
          f"with reason {t.dead_lettered}, lost {t.lost}; MessageSent without a send "
          f"{t.false_sent}, unknown outcomes published wrongly {t.wrong_outcome}, redriven "
          f"without reason {t.redriven_without_reason}   goal 0 lost, 0 twice: {verdict(ok)}")


def section_timers(waits: int, results: dict[str, bool]) -> None:
    print(f"5. Timers: Step Functions executions for {waits:,} waits over a month")
    timers.report(timers.simulate(waits), results)


def section_daily(customers: int, results: dict[str, bool]) -> tuple[daily.Base, daily.Result]:
    print("6. The daily check: customers per minute per worker, read units per customer")
    base = daily.build(customers)
    result = daily.measure(base)
    daily.report(result, results)
    return base, result


def section_segments(base: daily.Base, day: daily.Result, members: int,
                     results: dict[str, bool]) -> None:
    print("7. Segments: evaluation per core, a 5 M-member segment's keys, read units per day")
    segments.report(segments.evaluation(base), segments.fill(members), segments.reads_from(day),
                    results)


def section_local(customers: int) -> None:
    print(f"8. The local runtime: events per second at {customers:,} customers (embedded AWS)")
    local_rate.report(local_rate.measure(customers=customers))


def section_simulator(ladder: str, customers: int, days: int, profile_events: int,
                      results: dict[str, bool]) -> None:
    print(f"9. Dry runs at scale: `dialogue simulate` on a synthetic shop, {customers:,} customers,"
          f" {days} simulated days per rung, one process per rung")
    rungs = simulator.measure(tuple(int(n) for n in ladder.split(",")), customers, days)
    results["dry run: the month in <= 6 min, <= 2 GB"] = simulator.report(rungs, days=days)
    if profile_events:
        simulator_profile.report_cpu(simulator_profile.run(
            "cpu", profile_events, customers, [], days), profile_events)
        first, second = profile_events // 4, profile_events
        simulator_profile.report_memory(simulator_profile.run(
            "memory", profile_events, customers, [str(first), str(second), "12"], days))


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + ln for ln in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events for the AWS-call count")
    parser.add_argument("--catalog-cache-seconds", type=float, default=None,
                        help="override on_event's CATALOG_CACHE_SECONDS (default: the template's)")
    parser.add_argument("--customers", type=int, default=200,
                        help="customers for the delivery count (an e-mail and an SMS each)")
    parser.add_argument("--fault-jobs", type=int, default=1000,
                        help="jobs of the delivery fault run (4b; alone: bench/delivery_faults.py)")
    parser.add_argument("--waits", type=int, default=timers.WAITS,
                        help="waits for the Step Functions count (section 5)")
    parser.add_argument("--daily-customers", type=int, default=daily.CUSTOMERS_DEFAULT,
                        help="synthetic customers for the daily check and segments (6, 7)")
    parser.add_argument("--members", type=int, default=segments.MEMBERS,
                        help="members of the large segment whose keys are counted (7)")
    parser.add_argument("--local-customers", type=int, default=local_rate.CUSTOMERS,
                        help="customers in the tables for the local runtime's rate (8)")
    parser.add_argument("--sim-events", default=",".join(map(str, simulator.LADDER)),
                        help="events per rung of the dry-run ladder (9), comma-separated; the "
                        "issue's month: --sim-events 25000,50000,100000 --sim-days 30 (hours)")
    parser.add_argument("--sim-customers", type=int, default=simulator.CUSTOMERS,
                        help="customers of the synthetic shop (9)")
    parser.add_argument("--sim-days", type=int, default=simulator.DAYS,
                        help="simulated days per rung (9; the month's density: 100000 events "
                        "over 30 days)")
    parser.add_argument("--sim-profile-events", type=int, default=500,
                        help="events of the profiled and traced dry runs (9; 0: skip them)")
    parser.add_argument("--sim-only", action="store_true", help="run section 9 alone")
    parser.add_argument("--profile", action="store_true",
                        help="print the profiles even when the goals are met")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"dialogue bench: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python "
          f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()} "
          f"{platform.system()}\n")
    results: dict[str, bool] = {}
    if not args.sim_only:
        sections_1_to_8(args, results)
        print()
    section_simulator(args.sim_events, args.sim_customers, args.sim_days,
                      args.sim_profile_events, results)
    met = sum(results.values())
    print(f"\ngoals met: {met} of {len(results)}"
          + "".join(f"\n  missed: {name}" for name, ok in results.items() if not ok))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


def sections_1_to_8(args: argparse.Namespace, results: dict[str, bool]) -> None:
    section_calls(args.events, args.catalog_cache_seconds, results)
    print()
    section_engine(results, args.profile)
    print()
    section_imports(results, args.profile)
    print()
    section_delivery(args.customers, results)
    print()
    section_delivery_faults(args.fault_jobs, results)
    print()
    section_timers(args.waits, results)
    print()
    base, day = section_daily(args.daily_customers, results)
    print()
    section_segments(base, day, args.members, results)
    print()
    section_local(args.local_customers)


if __name__ == "__main__":
    sys.exit(main())
