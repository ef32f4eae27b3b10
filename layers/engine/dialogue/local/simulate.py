"""`dialogue simulate`: a whole timeline on the local runtime, on a simulated clock.

The same wiring as the template: events go to the bus, the functions run from their queues, the
wake-up state machine runs on moto's Step Functions with its waits fast-forwarded to the simulated
clock, the daily check runs at its time each simulated day and the release function at the send
time. Time jumps from one happening to the next (an event, a daily check, a send time, the end of
a wait), so a month takes seconds, not a month.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from dialogue import bootstrap
from dialogue.engine.schedule import fires
from dialogue.engine.timers import bucket_end
from dialogue.local import readback
from dialogue.local.runtime import LocalAws
from dialogue.local.timings import timed


class SimulatedClock:
    def __init__(self, at: datetime):
        self.at = at

    def now(self) -> datetime:
        return self.at


def parse_time(value: str) -> datetime:
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def daily_times(cron: str, zone: str, start: datetime) -> Iterator[datetime]:
    """The instants a "cron(M H * * ? *)" schedule fires in `zone` from `start` on, as
    EventBridge Scheduler fires it: not at all on a day whose local time the clocks skip, once
    on the night that time happens twice (`engine.schedule.fires`)."""
    m = re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", cron.strip())
    if not m:
        raise ValueError(f"the simulator runs daily cron schedules only, not {cron!r}")
    at, tz = time(int(m.group(2)), int(m.group(1))), ZoneInfo(zone)
    day = start.astimezone(tz).date() - timedelta(days=1)
    while True:
        instant = fires(day, at, tz)
        if instant is not None and instant >= start:
            yield instant
        day += timedelta(days=1)


BATCH = timedelta(minutes=15)


@dataclass
class Simulation:
    aws: LocalAws
    clock: SimulatedClock
    log: list[str] = field(default_factory=list)
    # The outcome events the shop's own consumer took off the outcome tap, by detail-type, and
    # the first one (an example for the demo): read each simulated day, so the tap holds a day.
    outcomes: Counter[str] = field(default_factory=Counter)
    first_outcome: dict[str, Any] | None = None
    kept_outcomes: list[dict[str, Any]] | None = None  # every outcome, when a test wants them

    def run(self, events: list[dict[str, Any]], start: datetime, days: int) -> None:
        from dialogue.local.stepfunctions import SimulatedWaits

        end = start + timedelta(days=days)
        self.clock.at = start
        bootstrap.use_clock(self.clock)
        self.aws.waits.clock = self.clock.now
        fns = {f.logical: f for f in self.aws.s.functions}
        daily = fns["DailyCheckFunction"]
        daily_at = daily_times(daily.schedule or "", daily.schedule_zone, start)
        params = self.aws.s.resolver.parameters
        hour, minute = params.get("SendTime", "09:00").split(":")
        send_at = daily_times(f"cron({int(minute)} {int(hour)} * * ? *)",
                              params.get("TimeZone", "UTC"), start)
        pending = sorted((parse_time(e["time"]), n, e) for n, e in enumerate(events))
        late = [e for at, _, e in pending if at < start]
        if late:
            self.log.append(f"{len(late)} events before --from are published at its start")
        next_daily, next_send = next(daily_at), next(send_at)
        waits: SimulatedWaits = self.aws.waits
        i, released = 0, start
        while True:
            wake = waits.pending()[:1]
            # A job held for another time (quiet hours) goes at the release function's first
            # run after it (every 15 minutes), not only at the daily send time.
            with timed("release lookups"):
                release = self._next_release(released)
            candidates = [t for t in (pending[i][0] if i < len(pending) else None, next_daily,
                                      next_send, wake[0] if wake else None, release)
                          if t is not None]
            at = max(min(candidates), self.clock.at)
            if at > end:
                break
            batch = []
            if i < len(pending) and pending[i][0] <= at:
                # Events of the next 15 minutes go together, up to the next other happening:
                # each is judged at its own time (occurred_at); deliveries they cause are
                # stamped up to 15 minutes late, as the release function's rhythm would.
                others = [t for t in (next_daily, next_send, wake[0] if wake else None, end,
                                      pending[i][0] + BATCH) if t is not None]
                # Events dated before --from are all published at its start, before anything
                # else happens then (the first daily check sees the whole back-dated history).
                until = max(min(others), start) if pending[i][0] < start else min(others)
                while i < len(pending) and pending[i][0] < until:
                    batch.append(pending[i][2])
                    at = max(at, pending[i][0])
                    i += 1
            self.clock.at = at
            if batch:
                with timed("publishing"):
                    self.aws.put_events(batch)
                with timed("events delivered"):  # the pipe, on_event and what it started
                    self._settle()
            if next_daily <= at:
                with timed("daily checks"):
                    self._quietly(partial(self.aws.invoke, daily, {"source": "aws.scheduler"}))
                    self._settle()
                next_daily = next(daily_at)
                self.read_outcomes()
            if wake and wake[0] <= at:
                with timed("waits"):
                    self._quietly(partial(waits.advance_to, at))
                    self._settle()
            if next_send <= at or (release is not None and release <= at):
                with timed("sends"):  # the release function, every 15 minutes
                    self._quietly(self.aws.run_schedules)
                    self._settle()
                released = at
                if next_send <= at:
                    next_send = next(send_at)
        self.clock.at = end
        self.read_outcomes()

    def read_outcomes(self) -> None:
        """Take the outcome tap's messages as the shop's consumer would, keeping their count.
        On AWS a queue keeps a message at most its MessageRetentionPeriod (4 days by default,
        14 at most: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/
        API_SetQueueAttributes.html), and moto never drops one: left unread over a simulated
        month, the tap would hold every outcome in memory."""
        taken = readback.outcome_events(self.aws)
        if taken and self.first_outcome is None:
            self.first_outcome = taken[0]
        self.outcomes.update(o["detail-type"] for o in taken)
        if self.kept_outcomes is not None:
            self.kept_outcomes.extend(taken)

    def _next_release(self, after: datetime) -> datetime | None:
        """The release function's first run (on the quarter hour) after the earliest release
        time of a scheduled job, if later than its last run `after`."""
        times = [parse_time(j["release_at"]) for j in readback.scheduled_jobs(self.aws)]
        if not times:
            return None
        run = bucket_end(min(times), 15)
        return run if run > after else None

    def _settle(self) -> None:
        """Deliver until queues, pipes and running executions are all quiet."""
        while True:
            router = self.aws.router
            before = router.invocations if router is not None else 0
            self._quietly(self.aws.drain)
            self._quietly(self.aws.waits.wait_idle)
            if router is None or router.invocations == before:
                return  # no state machine task ran meanwhile: nothing new to deliver

    @staticmethod
    def _quietly(call: Any) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):  # the functions' JSON logs and metrics
            return call()


def effects(aws: LocalAws) -> list[dict[str, Any]]:
    """What the activities did, in time order, read back from the tables."""
    out: list[dict[str, Any]] = []
    for job in readback.message_jobs(aws):
        out.append({"at": job["at"], "customer": job["subject"], "activity": job["activity_id"],
                    "element": job["element_id"], "effect": "message", "channel": job["channel"],
                    "template": job["template"], "status": job["status"],
                    **({"sent_at": job["sent_at"]} if job.get("sent_at") else {}),
                    **({"reason": job["reason"]} if job.get("reason") else {})})
    for c in readback.coupons(aws):
        out.append({"at": c["issued_at"], "customer": c["subject"], "activity": c["activity_id"],
                    "element": c.get("element_id"), "effect": "coupon",
                    "promotion": c["promotion"], "code": c["code"]})
    for subject, state in readback.customers(aws).items():
        for change in state.segment_history:
            out.append({"at": change.at.isoformat(), "customer": subject,
                        "activity": None if change.by == "rule" else change.by,
                        "element": change.element, "effect": f"segment_{change.change}",
                        "segment": change.segment})
    for row in out:  # one spelling of times: ISO 8601 in UTC with "Z"
        for name in ("at", "sent_at"):
            if row.get(name):
                row[name] = parse_time(row[name]).astimezone(UTC).isoformat().replace(
                    "+00:00", "Z")
    out.sort(key=lambda e: (parse_time(e["at"]), e["customer"], e["effect"]))
    return out + control_counts(aws)


def control_counts(aws: LocalAws) -> list[dict[str, Any]]:
    """The journey controls' counts per activity (`engine.controls`: reached goal, holdout, not
    entered…), as of the end of the simulation: one row each, after the effects."""
    from dialogue.engine.controls import describe

    clock = getattr(aws.waits, "clock", None)
    at = (clock() if clock else datetime.now(UTC)).astimezone(UTC)
    return [{"at": at.isoformat().replace("+00:00", "Z"), "customer": None, "activity": activity,
             "element": name, "effect": "counted", "count": n, "reason": describe(name)}
            for activity, per in sorted(readback.counters(aws).items())
            for name, n in sorted(per.items()) if name.startswith("@") and n]


def timeline(rows: list[dict[str, Any]]) -> str:
    lines, day = [], None
    for row in rows:
        at = parse_time(row["at"])
        if at.date() != day:
            day = at.date()
            lines.append(f"\n{day:%A %d %B %Y}")
        what = {"message": lambda r: f"{r['channel']} {r['template']!r} ({r['status']}"
                                     + (f" {parse_time(r['sent_at']):%d/%m %H:%M}"
                                        if r.get("sent_at") else "") + ")",
                "coupon": lambda r: f"coupon {r['promotion']}",
                "counted": lambda r: f"{r['count']} × {r['reason']}",
                }.get(row["effect"], lambda r: f"{r['effect'].replace('_', ' ')} {r['segment']}")
        lines.append(f"  {at:%H:%M} UTC  {row['customer'] or 'customers':24} {what(row):44} "
                     f"← {row['activity'] or 'segment rule'}/{row['element'] or '-'}")
    return "\n".join(lines)


def load_events(path: Any) -> list[dict[str, Any]]:
    """One EventBridge event per line (files, or every *.jsonl of a folder)."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text().splitlines()
            if line.strip()]


def first_day(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), time(0), UTC)
