"""Quiet hours and blackout days at send time, in the customer's time zone (else the shop's).

Pure. Decided when the message job is handled, from the state send_message reads anyway: no AWS
call is added per event, and a customer who moves (a new `time_zone`) is judged where they are
when the message would go. Wall-clock times are the zone's: a window opening at a time the
clocks skip (a spring change) opens at the first instant after the gap; one opening at a time
that happens twice (autumn) opens at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dialogue.model.controls import QuietHours

_MAX_STEPS = 128  # blackout days (at most 60) and the windows between them: always enough


def quiet_until(window: QuietHours, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When a message due at `now` may go: None if it may go now, else the instant the window
    next opens (after the quiet hours and any blackout days that follow)."""
    at = now
    for _ in range(_MAX_STEPS):
        opening = _closed_until(window, at, zone)
        if opening is None:
            return None if at == now else at
        at = opening
    return at  # pragma: no cover - bounded by the blackout list's length


def describe(window: QuietHours, zone: str) -> str:
    parts = []
    if window.start is not None:
        parts.append(f"quiet hours {window.start}-{window.end}")
    if window.blackout is not None:
        parts.append(f"blackout {window.blackout.name!r}")
    return f"{' and '.join(parts)} in {zone}"


def _closed_until(window: QuietHours, at: datetime, zone: ZoneInfo) -> datetime | None:
    local = at.astimezone(zone)
    day = local.date()
    if window.blackout is not None and day in window.blackout.dates:
        return _wall(day + timedelta(days=1), time(0), zone)
    if window.start is None or window.end is None:
        return None
    start, end, now = _hhmm(window.start), _hhmm(window.end), local.time().replace(tzinfo=None)
    if start < end:
        return _wall(day, end, zone) if start <= now < end else None
    if now >= start:
        return _wall(day + timedelta(days=1), end, zone)
    return _wall(day, end, zone) if now < end else None


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _wall(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant of a wall-clock time (normalised through UTC: a skipped time moves on)."""
    return datetime.combine(day, at, zone).astimezone(UTC)
