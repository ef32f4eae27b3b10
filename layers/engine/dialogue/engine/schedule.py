"""When the daily check fires, and which shop-local days it must catch up.

EventBridge Scheduler evaluates a cron schedule in its time zone and *skips* an invocation whose
local time does not exist (the spring change), and runs once when the local time happens twice
(the autumn change): https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
(section "Daylight savings time"). A skipped night, a failed invocation or an outage would lose
that day's birthdays, N-day carts and once-triggers; the next run checks those days first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# How far back a run looks for days whose check never ran. A gap longer than this (or a first
# deployment, which has no earlier run) is not caught up: the oldest days are let go.
CATCH_UP_DAYS = 7


def exists(day: date, at: time, zone: ZoneInfo) -> bool:
    """False when `at` falls in the hour the clocks skip on `day` in `zone`."""
    local = datetime.combine(day, at, zone)
    back = local.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def fires(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The instant a daily cron schedule at `at` fires on `day`, or None (skipped that day).
    On the autumn night the first of the two instants (fold=0)."""
    if not exists(day, at, zone):
        return None
    return datetime.combine(day, at, zone).astimezone(UTC)


def missed_days(today: date, checked: Callable[[date], bool],
                window: int = CATCH_UP_DAYS) -> list[date]:
    """Days before `today` whose check never ran, oldest first: back from yesterday to the
    last day that was checked. None when no day of the window was checked (a new stack)."""
    missed: list[date] = []
    for back in range(1, window + 1):
        day = today - timedelta(days=back)
        if checked(day):
            return sorted(missed)
        missed.append(day)
    return []


def run_instant(day: date, now: datetime, zone: ZoneInfo) -> datetime:
    """The instant a late check of `day` is judged at: `now`'s local time of day, on `day` (a
    time the clocks skipped that day is read with the offset before the change, so it stays on
    `day`)."""
    local = now.astimezone(zone)
    return datetime.combine(day, local.time().replace(tzinfo=None), zone).astimezone(UTC)
