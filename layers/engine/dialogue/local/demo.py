"""`dialogue demo` and `dialogue serve` on the embedded AWS."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialogue import bootstrap
from dialogue.engine.checks import load_catalog
from dialogue.local import readback
from dialogue.local.runtime import LocalAws
from dialogue.model.activity import Activity


class SimulatedClock:
    """The demo's time: the end of the day being replayed, not today's date."""

    def __init__(self, at: datetime):
        self.at = at

    def now(self) -> datetime:
        return self.at


def _quiet() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("dialogue").setLevel(logging.ERROR)


def _start(activities: Path, segments: Path, port: int = 0) -> tuple[LocalAws, list[Path]]:
    _quiet()
    aws = LocalAws(port=port).start()
    files = sorted(activities.glob("*.json"))
    templates = segments.parent / "templates"
    aws.upload_catalog(files, sorted(segments.glob("*.json")), sorted(templates.glob("*.json")))
    return aws, files


def run_demo(activities: Path, segments: Path, events: Path) -> int:
    import contextlib
    import io

    aws, files = _start(activities, segments)
    segment_files = sorted(segments.glob("*.json"))
    catalog, problems = load_catalog([(str(f), f.read_text()) for f in files],
                                     [(str(f), f.read_text()) for f in segment_files])
    for p in problems:
        print(f"skipped: {p}")
    print(f"dialogue demo: {len(catalog.activities)} activities, {len(catalog.segments)} segments, "
          f"embedded AWS at {aws.endpoint}\n")
    try:
        for day in sorted(events.glob("*.jsonl")):
            batch = [json.loads(line) for line in day.read_text().splitlines() if line.strip()]
            last = max(datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in batch)
            bootstrap.use_clock(SimulatedClock(last))
            aws.put_events(batch)
            with contextlib.redirect_stdout(io.StringIO()):  # the functions' JSON logs and metrics
                aws.drain()
            print(f"{day.stem}: {len(batch)} events published to EventBridge and processed")
            morning = _next_send_time(last, aws)
            bootstrap.use_clock(SimulatedClock(morning))
            before = len(readback.sent_emails(aws)) + len(readback.sent_sms(aws))
            with contextlib.redirect_stdout(io.StringIO()):
                aws.run_schedules()
            released = len(readback.sent_emails(aws)) + len(readback.sent_sms(aws)) - before
            print(f"{'':10}  {morning:%Y-%m-%d %H:%M} UTC, the daily send time: "
                  f"{released} scheduled messages sent")
        print()
        _report(aws, catalog.activities, {s.id: s.name for s in catalog.segments.values()})
    finally:
        aws.stop()
        bootstrap.use_clock(bootstrap.SystemClock())
    return 0


def _next_send_time(after: datetime, aws: LocalAws) -> datetime:
    """The first daily send time (the template's SendTime in SendTimeZone) after `after`,
    plus the release function's 15 minutes at most."""
    from zoneinfo import ZoneInfo

    params = aws.s.resolver.parameters
    zone = ZoneInfo(params.get("SendTimeZone", "UTC"))
    hour, minute = (int(x) for x in params.get("SendTime", "09:00").split(":"))
    local = after.astimezone(zone)
    release = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if release <= local:
        release += timedelta(days=1)
    return (release + timedelta(minutes=15)).astimezone(UTC)


def _report(aws: LocalAws, activities: dict[str, Activity], segment_names: dict[str, str]) -> None:
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
    outcomes = readback.outcome_events(aws)
    kinds = Counter(o["detail-type"] for o in outcomes)
    print("OUTCOME EVENTS on the bus for the shop: "
          + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"))
    rejected = readback.rejected_events(aws)
    print(f"\nREJECTED EVENTS (kept in the events dead-letter queue, with why): {len(rejected)}")
    for body, reason in rejected:
        print(f"  {body.get('detail-type')} {body.get('detail', {}).get('event_id')}: {reason}")


def serve(activities: Path, segments: Path, port: int) -> int:
    aws, files = _start(activities, segments, port)
    print(f"embedded AWS at {aws.endpoint} (region eu-west-1, any credentials)")
    print(f"  event bus : {aws.s.name('EventBus')}  (source 'shop')")
    print(f"  table     : {aws.s.name('Table')}")
    print(f"  messages  : {aws.s.queue_url('MessagesQueue')}")
    print(f"  {len(files)} activities loaded; put_events to the bus and watch. Ctrl-C stops.",
          flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            moved = aws.drain()
            if moved:
                print(f"{datetime.now(UTC):%H:%M:%S} delivered {moved} messages", flush=True)
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        aws.stop()
    return 0

