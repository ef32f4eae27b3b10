"""`dialogue why` and `dialogue stats activity`: read a stack (deployed or served), print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialogue.engine.catalog import Catalog
from dialogue.engine.explain import Explanation, explain
from dialogue.local import insight
from dialogue.local.inputs import UsageError

MARKS = {"passed": "✓", "stopped": "✗", "waiting": "…", "not reached": "·", "reached": "→",
         "sent": "✓", "suppressed": "✗", "held": "✗", "failed": "✗", "scheduled": "…"}


def add_stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", default=os.environ.get("DIALOGUE_STACK"),
                   help="a deployed stack's name (or DIALOGUE_STACK): tables, shard count and "
                   "time zone are read from it")
    p.add_argument("--table", default=os.environ.get("DIALOGUE_TABLE"),
                   help="without --stack: the TableName output (a served stack prints it)")
    p.add_argument("--customers-table", default=os.environ.get("DIALOGUE_CUSTOMERS_TABLE"))
    p.add_argument("--shards", type=int, help="without --stack: the stack's SegmentShards")
    p.add_argument("--time-zone", default=os.environ.get("DIALOGUE_TIME_ZONE", "UTC"),
                   help="without --stack: the stack's TimeZone")
    p.add_argument("--activities", type=Path, default=Path("examples/activities"),
                   help="without --stack: the activity folder the stack runs")
    p.add_argument("--segments", type=Path, help="without --stack: its segment folder "
                   "(default: ../segments beside the activities)")


def stack_of(args: argparse.Namespace, need_shards: bool = False) -> insight.StackRef:
    """From CloudFormation when --stack is given; otherwise every name given explicitly, never
    a default that could disagree with the stack."""
    import boto3

    if args.stack:
        try:
            return insight.StackRef.from_cloudformation(boto3.client("cloudformation"),
                                                        args.stack)
        except LookupError as e:
            raise UsageError(str(e)) from e
    if not args.table:
        raise UsageError("--stack (or --table with a served stack's names) is needed")
    if need_shards and not args.shards:
        raise UsageError("--shards (the stack's SegmentShards) is needed without --stack")
    return insight.StackRef(args.table, args.customers_table or args.table, args.shards or 0,
                            args.time_zone)


def catalog_of(args: argparse.Namespace, ref: insight.StackRef) -> Catalog:
    """The stack's own catalog (its bucket) when known, else the activity folder."""
    if ref.catalog_bucket:
        import time

        import boto3

        from dialogue.aws.s3_catalog import S3CatalogSource

        return S3CatalogSource(boto3.client("s3"), ref.catalog_bucket, 0, time.monotonic,
                               lambda problems: None).catalog()
    from dialogue.engine.checks import load_catalog

    files = sorted(Path(args.activities).glob("*.json"))
    folder = args.segments or Path(args.activities).parent / "segments"
    segments = sorted(Path(folder).glob("*.json"))
    catalog, _ = load_catalog([(str(f), f.read_text()) for f in files],
                              [(str(f), f.read_text()) for f in segments])
    return catalog


def subject_of(customer: str) -> str:
    return customer if customer.startswith(("customer:", "guest:")) else f"customer:{customer}"


def why(args: argparse.Namespace) -> int:
    import boto3

    ref = stack_of(args)
    ddb = boto3.client("dynamodb")
    subject = subject_of(args.customer)
    state = insight.customer_state(ddb, ref, subject)
    if state is None:
        print(f"{subject}: no such customer in {ref.customers_table} (no event seen for them)",
              file=sys.stderr)
        return 1
    catalog = catalog_of(args, ref)
    chosen = [catalog.activities[args.activity]] if args.activity in catalog.activities else [
        a for a in catalog.activities.values() if not args.activity]
    if not chosen:
        raise UsageError(f"no activity {args.activity!r} in the stack's catalog")
    messages = insight.customer_messages(ddb, ref, state, chosen)
    now = datetime.now(UTC)
    for activity in sorted(chosen, key=lambda a: a.id):
        print(format_explanation(explain(state, activity, now, messages.get(activity.id))))
    return 0


def format_explanation(out: Explanation) -> str:
    lines = [f"{out.name} ({out.activity_id}): {out.headline}"]
    for ln in out.lines:
        lines.append(f"  {MARKS.get(ln.status, '?')} {ln.element_id:24} {ln.status:11} {ln.text}")
    return "\n".join(lines)


def stats_activity(args: argparse.Namespace) -> int:
    import boto3

    ref = stack_of(args)
    activity = catalog_of(args, ref).activities.get(args.name)
    if activity is None:
        raise UsageError(f"no activity {args.name!r} in the stack's catalog")
    stats = insight.activity_stats(boto3.client("dynamodb"), ref, activity,
                                   waiting=not args.no_waiting, days=args.days)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(format_activity_stats(stats))
    return 0


def format_activity_stats(stats: dict[str, Any]) -> str:
    exits = stats.get("exits", {})
    out = [f"{stats['name']} ({stats['activity']}): {stats['entries']} entries, "
           f"{sum(exits.values())} exits, {stats['coupons']} coupons",
           "customers who reached each element (in total):"]
    waiting = stats.get("waiting", {})
    for element, n in stats["reached"].items():
        now = f"  ({waiting[element]} waiting there now)" if waiting.get(element) else ""
        out.append(f"  {element:28} {n:>8}{now}")
    out += _named("exits by reason", exits)
    if stats.get("per_day"):
        out.append(f"per day ({stats.get('time_zone', 'the shop')}'s days):")
    for row in stats.get("per_day", []):
        reached = ", ".join(f"{el} {n}" for el, n in row["reached"].items())
        ended = ", ".join(f"{why} {n}" for why, n in row["exits"].items())
        out.append(f"  {row['day']}  entries {row['entries']}; reached: {reached or '-'}; "
                   f"exits: {ended or '-'}")
    for kind, per in stats.get("controls", {}).items():
        out += _named(f"messages {kind}" if kind != "not_entered" else "not entered", per)
    holdout = stats.get("holdout")
    if holdout:
        out.append("holdout (control group) beside the treated group:")
        for group in ("treated", "holdout"):
            g, rate = holdout[group], holdout[group]["conversion"]
            out.append(f"  {group:10} {g['entries']:>6} entries {g['reached_goal']:>6} "
                       f"reached goal  conversion {'-' if rate is None else f'{rate:.1%}'}")
    out.append("messages by outcome:" if stats["messages"] else "messages: none")
    for m in stats["messages"]:
        out.append(f"  {m['status']:12} {m['count']:>6}  {m['reason'] or ''}".rstrip())
    for day, n in stats["messages_per_day"].items():
        out.append(f"  {day}: {n} message(s) decided")
    return "\n".join(out)


def _named(title: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return []
    return [f"{title}:", *(f"  {n:>8}  {name}" for name, n in counts.items())]


def write_report(args: argparse.Namespace) -> int:
    """`dialogue report`: the page of a deployed (or served) stack, written to --output."""
    from zoneinfo import ZoneInfo

    import boto3

    from dialogue.local import report
    from dialogue.local.progress import Progress

    ref = stack_of(args, need_shards=True)
    catalog = catalog_of(args, ref)
    today = datetime.now(ZoneInfo(ref.time_zone)).date()
    with Progress(len(catalog.activities) + len(catalog.segments), "report",
                  quiet=args.quiet) as progress:
        data = report.collect(boto3.client("dynamodb"), ref, catalog, today, args.days,
                              progress)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report.render(data), encoding="utf-8")
    print(args.output.resolve())
    return 0
