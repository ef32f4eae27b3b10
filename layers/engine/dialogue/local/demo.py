"""`dialogue demo` and `dialogue serve` on the embedded AWS."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dialogue import bootstrap
from dialogue.engine.checks import load_catalog
from dialogue.local import readback
from dialogue.local.progress import Progress
from dialogue.local.runtime import LocalAws
from dialogue.local.simulate import (
    SimulatedClock,
    Simulation,
    daily_times,
    effects,
    first_day,
    load_events,
    parse_time,
    timeline,
)
from dialogue.model.activity import Activity


@dataclass
class _Watched(Simulation):
    """A simulation that moves a progress bar (days simulated) each time it settles."""

    progress: Progress | None = None
    first: datetime | None = None

    def _settle(self) -> None:
        super()._settle()
        if self.progress is not None and self.first is not None:
            self.progress.reach((self.clock.at - self.first).days, f"{self.clock.at:%Y-%m-%d}")

    def run(self, events: list[dict[str, Any]], start: datetime, days: int) -> None:
        self.first = start
        super().run(events, start, days)
        if self.progress is not None:
            self.progress.reach(days)


def _quiet() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("dialogue").setLevel(logging.ERROR)
    # powertools warns when a function published no metric (an idle wake-up): not news here
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _start(activities: Path, segments: Path, port: int = 0, templates: Path | None = None,
           parameters: dict[str, str] | None = None,
           extra: Path | None = None) -> tuple[LocalAws, list[Path]]:
    _quiet()
    aws = LocalAws(port=port, parameters=parameters).start()
    files = sorted(activities.glob("*.json")) + ([extra] if extra else [])
    templates = templates or segments.parent / "templates"
    aws.upload_catalog(files, sorted(segments.glob("*.json")), sorted(templates.glob("*.json")))
    return aws, files


def _catalog(activities: list[Path], segments: Path) -> Any:
    catalog, problems = load_catalog([(str(f), f.read_text()) for f in activities],
                                     [(str(f), f.read_text())
                                      for f in sorted(segments.glob("*.json"))])
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    return catalog


def run_simulation(activities: Path, segments: Path, templates: Path, events: Path, start: str,
                   days: int, output: str, parameters: dict[str, str],
                   quiet: bool = False, candidate: Path | None = None,
                   summary_file: Path | None = None, timings_file: Path | None = None) -> int:
    """`dialogue simulate`: the timeline of effects, readable or one JSON object per line, then
    what the shop would hear and what was dead-lettered (`dryrun`)."""
    from dialogue.local import dryrun, timings

    timings.reset()
    aws, files = _start(activities, segments, templates=templates, parameters=parameters,
                        extra=candidate)
    _catalog(files, segments)
    try:
        with Progress(days, "simulated days", quiet=quiet) as progress:
            simulation = _Watched(aws, SimulatedClock(first_day(start)), progress=progress)
            with timings.timed("simulation"):
                simulation.run(load_events(events), first_day(start), days)
        for line in simulation.log:
            print(f"note: {line}", file=sys.stderr)
        with timings.timed("readback"):
            rows = effects(aws)
        if output == "jsonl":
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        else:
            print(timeline(rows).lstrip("\n"))
        data = dryrun.summary(aws, simulation.outcomes)
        if timings_file is not None:
            timings_file.write_text(json.dumps(timings.report(), indent=2))
        if summary_file is not None:
            summary_file.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        if output != "jsonl":
            print(dryrun.format_summary(data))
        if candidate is not None:
            cid = Activity.model_validate_json(candidate.read_text()).id
            print(dryrun.candidate(rows, cid, data["reached"].get(cid, {})),
                  file=sys.stderr if output == "jsonl" else sys.stdout)
    finally:
        aws.stop()
        bootstrap.use_clock(bootstrap.SystemClock())
    return 0


def run_demo(activities: Path, segments: Path, events: Path, days: int = 31,
             report: Path = Path("build/dialogue-report.html"), quiet: bool = False) -> int:
    """The example shop's events over a simulated month, then what every customer got."""
    aws, files = _start(activities, segments)
    catalog = _catalog(files, segments)
    timeline_events = load_events(events)
    start = min(parse_time(e["time"]) for e in timeline_events).date().isoformat()
    print(f"dialogue demo: {len(catalog.activities)} activities, {len(catalog.segments)} segments, "
          f"{len(timeline_events)} events from {start}, {days} simulated days, "
          f"embedded AWS at {aws.endpoint}")
    try:
        with Progress(days, "simulated days", quiet=quiet) as progress:
            simulation = _Watched(aws, SimulatedClock(first_day(start)), progress=progress)
            simulation.run(timeline_events, first_day(start), days)
        print("\nTIMELINE (UTC): what the activities did, as the tables record it")
        print(timeline(effects(aws)))
        print()
        _report(aws, catalog.activities, {s.id: s.name for s in catalog.segments.values()},
                simulation)
        last_day = (first_day(start) + timedelta(days=days - 1)).date()
        write_report(aws, catalog, last_day, report, quiet)
        print(f"\nREPORT: {report.resolve()} (open it in a browser)")
    finally:
        aws.stop()
        bootstrap.use_clock(bootstrap.SystemClock())
    return 0


def _report(aws: LocalAws, activities: dict[str, Activity], segment_names: dict[str, str],
            simulation: Simulation) -> None:
    states = readback.customers(aws)
    messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in readback.message_jobs(aws):
        messages[job["subject"]].append(job)
    coupons: dict[str, list[dict[str, str]]] = defaultdict(list)
    for c in readback.coupons(aws):
        coupons[c["subject"]].append(c)

    def act(activity_id: str | None) -> str:
        a = activities.get(activity_id or "")
        return a.name if a else str(activity_id)

    print("CUSTOMERS")
    for subject, state in sorted(states.items()):
        who = state.profile.first_name or ("guest" if subject.startswith("guest:") else "")
        if state.linked_to:  # a browser a login linked (docs/identity.md)
            who += f" of customer:{state.linked_to}" + (", logged out" * bool(state.linked_until))
        print(f"  {who} ({subject})")
        for m in sorted(messages[subject], key=lambda m: m["at"]):
            status = m["status"] + (f": {m['reason']}" if m.get("reason") else "")
            print(f"    message  {m['channel']:5} {m['template']!r:28} ← {act(m['activity_id'])}"
                  f"\n             {status}")
        for c in sorted(coupons[subject], key=lambda c: c["issued_at"]):
            print(f"    coupon   {c['promotion']:34} ← {act(c['activity_id'])}  code {c['code']}")
        for change in state.segment_history:
            sign = "+" if change.change == "added" else "-"
            print(f"    segment  {sign} {segment_names.get(change.segment, change.segment):32}"
                  f" ← {act(change.by)}")
        for activity_id, journey in sorted(state.journeys.items()):
            for instance in journey.waiting:
                until = f" until {instance.due_at:%Y-%m-%d %H:%M} UTC" if instance.due_at else ""
                print(f"    waiting  at {instance.element!r}{until} ← {act(activity_id)}")
        if not (messages[subject] or coupons[subject] or state.segment_history
                or any(j.waiting for j in state.journeys.values())):
            print("    (nothing yet)")
    print("\nACTIVITIES (customers who reached each element)")
    counts = readback.counters(aws)
    for activity in sorted(activities.values(), key=lambda a: a.id):
        per = counts.get(activity.id, {})
        line = "  ".join(f"{e.id}:{per.get(e.id, 0)}" for e in activity.elements)
        print(f"  {activity.name}\n      {line}")
    emails, sms = readback.sent_emails(aws), readback.sent_sms(aws)
    print(f"\nDELIVERED: {len(emails)} e-mails through SES, {len(sms)} SMS through SNS")
    if emails:
        print("  the first e-mail, as SES received it:")
        raw = emails[0].raw_data if hasattr(emails[0], "raw_data") else str(emails[0])
        for line in raw.splitlines()[:24]:
            print(f"    | {line[:96]}")
    simulation.read_outcomes()  # what the shop's consumer took off the tap, then the rest
    kinds, first = simulation.outcomes, simulation.first_outcome
    print("OUTCOME EVENTS on the bus for the shop: "
          + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"))
    if first:
        print(f"  e.g. {first['detail-type']}: {json.dumps(first['detail'])[:150]}")
    groups = aws.message_groups
    print(f"ORDERING: {sum(groups.values())} events in {len(groups)} FIFO message groups "
          f"(c#customer, g#guest), each group in order, the groups in parallel")
    rejected = readback.rejected_events(aws)
    print(f"\nREJECTED EVENTS (kept in the events dead-letter queue, with why): {len(rejected)}")
    for body, reason in rejected:
        print(f"  {body.get('detail-type')} {body.get('detail', {}).get('event_id')}: {reason}")


def write_report(aws: LocalAws, catalog: Any, today: date, path: Path, quiet: bool) -> None:
    """The HTML report of the embedded stack, as `dialogue report` writes a deployed one's."""
    from dialogue.local import report
    from dialogue.local.insight import StackRef
    from dialogue.local.progress import Progress

    steps = len(catalog.activities) + len(catalog.segments)
    with Progress(steps, "report", quiet=quiet) as progress:
        data = report.collect(aws.client("dynamodb"), StackRef.from_local(aws), catalog, today,
                              progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.render(data), encoding="utf-8")


def serve(activities: Path, segments: Path, port: int, console_port: int = 4567) -> int:
    aws, files = _start(activities, segments, port)
    console = _console(aws, _catalog(files, segments), console_port)
    print(f"embedded AWS at {aws.endpoint} (region eu-west-1, any credentials)")
    print(f"  event bus : {aws.s.name('EventBus')}  (source 'shop')")
    print(f"  customers : {aws.s.name('CustomersTable')}")
    print(f"  table     : {aws.s.name('Table')}")
    print(f"  messages  : {aws.s.queue_url('MessagesQueue')}")
    print(f"  refresh   : {aws.s.name('RefreshFunction')}  (dialogue segments refresh ID "
          "--function this, with AWS_ENDPOINT_URL set)")
    print(f"  console   : http://127.0.0.1:{console.server_address[1]}/ (the report, live; "
          "/why?customer=ID)")
    params = aws.s.resolver.parameters
    print(f"  stats/why : --table {aws.s.name('Table')} --customers-table "
          f"{aws.s.name('CustomersTable')} --shards {params['SegmentShards']} "
          f"--time-zone {params['TimeZone']}  (dialogue stats|why|report, AWS_ENDPOINT_URL set)")
    print(f"  {len(files)} activities loaded; put_events to the bus and watch. Ctrl-C stops.",
          flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # stop now, even in the middle of a delivery
    schedules = RealTimeSchedules(aws, datetime.now(UTC))
    try:
        while True:
            now = datetime.now(UTC)
            due = aws.waits.pending()[:1]
            if due and due[0] <= now:  # a wait ended in real time
                aws.waits.advance_to(now)
            ran = schedules.run_due(now)
            moved = aws.drain()
            if moved or ran:
                print(f"{now:%H:%M:%S} {' and '.join(ran) + ': ' if ran else ''}"
                      f"delivered {moved} messages", flush=True)
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        console.shutdown()
        aws.stop()
    return 0


def _console(aws: LocalAws, catalog: Any, port: int) -> Any:
    import boto3

    from dialogue.local import console
    from dialogue.local.insight import StackRef

    return console.start(lambda: boto3.session.Session().client("dynamodb"),
                         StackRef.from_local(aws), catalog, port)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: what the embedded AWS holds is in memory and goes with it anyway."""
    raise KeyboardInterrupt


class RealTimeSchedules:
    """The template's schedules on the wall clock, as EventBridge Scheduler would fire them:
    the daily check at its cron time in its zone, the rate() functions (the send-time release)
    every 15 minutes."""

    RATE = timedelta(minutes=15)

    def __init__(self, aws: LocalAws, now: datetime):
        self.aws = aws
        daily = next(f for f in aws.s.functions if f.logical == "DailyCheckFunction")
        self.daily, self.daily_at = daily, daily_times(daily.schedule or "", daily.schedule_zone,
                                                       now)
        self.next_daily, self.next_rate = next(self.daily_at), now + self.RATE

    def run_due(self, now: datetime) -> list[str]:
        ran = []
        if now >= self.next_daily:
            self.aws.invoke(self.daily, {"source": "aws.scheduler", "detail": {}})
            self.next_daily = next(self.daily_at)
            ran.append("daily check")
        if now >= self.next_rate:
            self.aws.run_schedules()
            self.next_rate = now + self.RATE
            ran.append("release")
        return ran
