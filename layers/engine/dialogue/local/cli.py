"""`dialogue`: validate activities, export the JSON Schema, run the demo, serve embedded AWS."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from dialogue.local import inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dialogue", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check activities: each problem as file : path : reason")
    p.add_argument("paths", nargs="+", type=Path, help="activity files or folders")
    p.add_argument("--segments", type=Path, help="segment folder (default: ../segments)")
    p.add_argument("--templates", type=Path, help="template folder (default: ../templates)")
    p.add_argument("--against", type=Path, metavar="OLD.json",
                   help="the live version of an activity: what the edit does to its waiting "
                        "customers")

    p = sub.add_parser("render", help="preview a message template for a customer")
    p.add_argument("template", type=Path, help="a template file (templates/<id>.json)")
    p.add_argument("--customer", type=Path, required=True,
                   help='JSON: {"customer": {profile}, "event": {...}, "coupon": {...}, ...}')
    p.add_argument("--shop-name", default="Shop")
    p.add_argument("--shop-url", default="https://shop.example")

    p = sub.add_parser("schema", help="print the JSON Schema of a document kind")
    p.add_argument("kind", nargs="?", default="activity",
                   choices=["activity", "segment", "event", "outcome"])

    for name, text in (("demo", "replay example events on embedded AWS and report"),
                       ("serve", "run embedded AWS until interrupted; put_events to its endpoint")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--activities", type=Path, default=Path("examples/activities"))
        p.add_argument("--segments", type=Path, default=Path("examples/segments"))
        if name == "demo":
            p.add_argument("--events", type=Path, default=Path("examples/events"))
            p.add_argument("--report", type=Path, default=Path("build/dialogue-report.html"),
                           help="where to write the HTML report")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        else:
            p.add_argument("--port", type=int, default=4566,
                           help="the endpoint's port (default 4566; 0: any free port)")
            p.add_argument("--console-port", type=int, default=4567,
                           help="the live report's port (default 4567; 0: any free port)")

    p = sub.add_parser("simulate", help="run events over simulated days on embedded AWS")
    p.add_argument("--activities", type=Path, default=Path("examples/activities"))
    p.add_argument("--segments", type=Path, default=Path("examples/segments"))
    p.add_argument("--templates", type=Path, default=Path("examples/templates"))
    p.add_argument("--events", type=Path, required=True,
                   help="one EventBridge event per line (a .jsonl file or a folder of them)")
    p.add_argument("--from", dest="start", required=True, help="first simulated day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--output", choices=["timeline", "jsonl"], default="timeline")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a template parameter (e.g. DailyCheckTime=03:00)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--activity", type=Path, help="a candidate activity file, added to the run: "
                   "who would enter, what they would receive and when (nothing is sent)")
    p.add_argument("--summary", type=Path, help="also write the outcome events, dead letters "
                   "and counters as JSON to this file")
    p.add_argument("--timings", type=Path, help="also write where the run's time went (seconds "
                   "per phase and per function, wall and CPU) as JSON to this file")

    p = sub.add_parser("publish", help="validate a folder, then upload it to the catalog bucket")
    p.add_argument("folder", type=Path, help="a folder with activities/, segments/, templates/")
    p.add_argument("--bucket", required=True, help="the stack's CatalogBucketName output")
    p.add_argument("--dry-run", action="store_true", help="show what would change, upload nothing")
    p.add_argument("--delete", action="store_true",
                   help="also remove documents that are in the bucket but not in the folder")

    p = sub.add_parser("segments", help="act on a deployed (or served) stack's segments")
    p.add_argument("action", choices=["refresh"])
    p.add_argument("names", nargs="+", help="rule-based segment ids")
    p.add_argument("--function", default=os.environ.get("DIALOGUE_REFRESH_FUNCTION"),
                   help="the stack's RefreshFunctionName output (or DIALOGUE_REFRESH_FUNCTION)")

    from dialogue.local.why import add_stack_options

    p = sub.add_parser("stats", help="activity or segment statistics of a deployed (or served) "
                       "stack")
    p.add_argument("kind", choices=["segment", "activity"])
    p.add_argument("name")
    add_stack_options(p)
    p.add_argument("--days", type=int, default=30, help="segment: the days up to today; "
                   "activity: the last days with counts (the shop's days)")
    p.add_argument("--json", action="store_true", help="activity: the statistics as JSON")
    p.add_argument("--no-waiting", action="store_true",
                   help="activity: skip who waits where (a scan of every customer's state)")

    p = sub.add_parser("why", help="why a customer did (not) enter or get a message")
    p.add_argument("customer", help="a customer id (or customer:ID / guest:ID)")
    p.add_argument("activity", nargs="?", help="one activity id (default: every activity)")
    add_stack_options(p)

    p = sub.add_parser("report", help="one self-contained HTML page of a stack's activities")
    add_stack_options(p)
    p.add_argument("--output", type=Path, default=Path("build/dialogue-report.html"))
    p.add_argument("--days", type=int, default=30, help="segment sizes over this many days")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("customer", help="a customer's data on request, on a deployed (or "
                       "served) stack: delete it all, or export it as one JSON document")
    p.add_argument("action", choices=["delete", "export"])
    p.add_argument("customer_id")
    p.add_argument("--table", default=os.environ.get("DIALOGUE_TABLE"),
                   help="the stack's TableName output (or DIALOGUE_TABLE)")
    p.add_argument("--customers-table", default=os.environ.get("DIALOGUE_CUSTOMERS_TABLE"),
                   help="the stack's CustomersTableName output (or DIALOGUE_CUSTOMERS_TABLE)")
    p.add_argument("--shards", type=int, default=16, help="the stack's SegmentShards")

    args = parser.parse_args(argv)
    from dialogue.local.inputs import UsageError
    from dialogue.settings import BadSetting

    try:
        return _run(args)
    except (UsageError, BadSetting) as e:  # the user's mistake: one line, no traceback
        print(f"dialogue {args.command}: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    match args.command:
        case "validate":
            status = validate(args.paths, args.segments, args.templates)
            return status if args.against is None else max(status, against(args))
        case "schema":
            print(json.dumps(schema(args.kind), indent=2, ensure_ascii=False))
            return 0
        case "render":
            return render_preview(args.template, args.customer, args.shop_name, args.shop_url)
        case "demo":
            from dialogue.local.demo import run_demo

            _check_catalog(args)
            inputs.events_file(args.events)
            return run_demo(args.activities, args.segments, args.events, report=args.report,
                            quiet=args.quiet)
        case "simulate":
            from dialogue.local.demo import run_simulation
            from dialogue.local.runtime import TEMPLATE
            from dialogue.local.template import load

            _check_catalog(args)
            inputs.folder_of_documents(args.templates, "templates", required=False)
            inputs.events_file(args.events)
            if args.activity is not None:
                from dialogue.local.dryrun import validate_candidate

                validate_candidate(args.activity, args.segments, args.templates)
            start = inputs.day(args.start)
            days = inputs.positive(args.days, "--days")
            params = inputs.parameters(args.param, set(load(TEMPLATE).get("Parameters", {})))
            return run_simulation(args.activities, args.segments, args.templates, args.events,
                                  start, days, args.output, params, quiet=args.quiet,
                                  candidate=args.activity, summary_file=args.summary,
                                  timings_file=args.timings)
        case "publish":
            from dialogue.local.publish import publish

            return publish(args.folder, args.bucket, dry_run=args.dry_run, delete=args.delete)
        case "segments":
            return refresh_segments(args.names, args.function)
        case "stats" if args.kind == "activity":
            from dialogue.local.why import stats_activity

            return stats_activity(args)
        case "customer":
            from dialogue.local.customer_cli import customer_request

            return customer_request(args.action, args.customer_id, args.table,
                                    args.customers_table, args.shards)
        case "stats":
            return show_stats(args)
        case "report":
            from dialogue.local.why import write_report

            return write_report(args)
        case "why":
            from dialogue.local.why import why

            return why(args)
        case "serve":
            from dialogue.local.demo import serve

            _check_catalog(args)
            return serve(args.activities, args.segments, inputs.port(args.port),
                         inputs.port(args.console_port))
    return 2  # pragma: no cover


def _check_catalog(args: argparse.Namespace) -> None:
    """Before the embedded AWS starts: an activity folder with activities, a segment folder."""
    inputs.folder_of_documents(args.activities, "activities")
    inputs.folder_of_documents(args.segments, "segments", required=False)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dialogue")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def validate(paths: list[Path], segments_dir: Path | None,
             templates_dir: Path | None = None) -> int:
    from dialogue.engine.checks import load_catalog

    files = [f for p in paths for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    missing = [f for f in files if not f.is_file()]
    for f in missing:
        print(f"{f} : - : no such file", file=sys.stderr)
    files = [f for f in files if f.is_file()]
    beside = files[0].resolve().parent.parent if files else Path(".")
    segment_files = _documents(segments_dir or beside / "segments")
    template_files = _documents(templates_dir or beside / "templates")
    catalog, problems = load_catalog([(str(f), _text(f)) for f in files],
                                     [(str(f), _text(f)) for f in segment_files],
                                     [(str(f), _text(f)) for f in template_files])
    for problem in problems:
        print(problem)
    bad = len({p.file for p in problems}) + len(missing)
    print(f"{len(files)} activities, {len(segment_files)} segments and {len(template_files)} "
          "templates checked: "
          f"{len(catalog.activities)} activities valid, {bad} files with problems",
          file=sys.stderr)
    return 1 if problems or missing or not files else 0


def against(args: argparse.Namespace) -> int:
    """`validate --against OLD.json`: the edit report of the activity of the same id."""
    from dialogue.engine.checks import parse_document
    from dialogue.engine.edits import edit_report
    from dialogue.model.activity import Activity

    old, problems = parse_document(str(args.against), _text(args.against), Activity)
    for problem in problems:
        print(problem)
    if old is None:
        return 1
    for path in [f for p in args.paths for f in (sorted(p.glob("*.json")) if p.is_dir()
                                                 else [p])]:
        new, _ = parse_document(str(path), _text(path), Activity)
        if new is not None and new.id == old.id:
            print("\n".join(edit_report(old, new)))
            return 0
    print(f"{args.against} : $.id : no activity {old.id!r} among the files checked",
          file=sys.stderr)
    return 1


def refresh_segments(names: list[str], function: str | None) -> int:
    """Ask the stack's refresh function to refresh these segments now (AWS_ENDPOINT_URL for a
    served local stack)."""
    import boto3

    if not function:
        print("--function (or DIALOGUE_REFRESH_FUNCTION) is needed", file=sys.stderr)
        return 2
    answer = boto3.client("lambda").invoke(FunctionName=function,
                                           Payload=json.dumps({"segments": names}).encode())
    print(answer["Payload"].read().decode())
    return 1 if answer.get("FunctionError") else 0


def show_stats(args: argparse.Namespace) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import boto3

    from dialogue.aws.stats import segment_stats
    from dialogue.local.why import stack_of

    ref = stack_of(args, need_shards=True)
    segment, table, shards, zone, days = (args.name, ref.table, ref.segment_shards,
                                          ref.time_zone, args.days)
    today = datetime.now(ZoneInfo(zone)).date()
    stats = segment_stats(boto3.client("dynamodb"), table, segment, shards, today, days)
    print(f"segment {segment}: {stats['size']} members now")
    print(f"{'day':12} {'size':>8} {'entered':>8} {'left':>8}")
    for row in stats["days"]:
        print(f"{row['day']:12} {row['size']:>8} {row['entered']:>8} {row['left']:>8}")
    return 0


def render_preview(template_file: Path, customer_file: Path, shop_name: str, shop_url: str) -> int:
    """Render as send_message would; a missing value is reported as the hold-back reason."""
    from pydantic import ValidationError

    from dialogue.delivery.render import RenderError, render
    from dialogue.engine.checks import _TemplateDocument

    try:
        template = _TemplateDocument.model_validate_json(template_file.read_text()).root
        context = json.loads(customer_file.read_text())
    except (OSError, ValueError, ValidationError) as e:
        print(f"{template_file} / {customer_file}: {e}", file=sys.stderr)
        return 2
    context.setdefault("shop", {"name": shop_name, "url": shop_url})
    if template.channel == "email":
        context.setdefault("unsubscribe_url", f"{shop_url}/unsubscribe?c=preview&t=preview")
    try:
        rendered = render(template, context)
    except RenderError as e:
        print(f"held back: {e}", file=sys.stderr)
        return 1
    if rendered.subject is not None:
        print(f"Subject: {rendered.subject}\n")
    print(rendered.text.rstrip())
    if rendered.html:
        print(f"\n--- HTML ---\n{rendered.html.rstrip()}")
    if template.channel == "sms":
        from dialogue.delivery.sms import parts

        print(f"\n({len(rendered.text)} characters, {parts(rendered.text)} SMS part(s))")
    return 0


def _text(file: Path) -> str:
    """A document's text as the runtime reads it from S3 (bytes that are not UTF-8 replaced)."""
    return file.read_bytes().decode("utf-8", errors="replace")


def _documents(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def schema(kind: str) -> dict[str, object]:
    from dialogue.model.activity import Activity
    from dialogue.model.events import EVENTS
    from dialogue.model.outcomes import schema as outcome_schema
    from dialogue.model.segment import Segment

    if kind == "activity":
        return Activity.model_json_schema(mode="validation")
    if kind == "segment":
        return Segment.model_json_schema(mode="validation")
    if kind == "outcome":
        return outcome_schema()
    return {"title": "Shop events", "oneOf": [m.model_json_schema(by_alias=True)
                                               for m in EVENTS.values()]}


if __name__ == "__main__":
    sys.exit(main())
