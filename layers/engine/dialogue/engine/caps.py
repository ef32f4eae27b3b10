"""Frequency caps across activities, decided from the customer's state when a message is queued.

Every message of an activity that is not `cap_exempt` is noted in the customer's send log
(`CustomerState.sends`: Unix seconds per channel, CAP_DAYS long, at most MAX_SENDS each). An
activity with a `frequency_cap` looks at that log before queueing: a message that would go over
any of its limits is skipped, or held until the first instant every limit allows it (and noted
at that instant, so the next message sees it). The log is part of the state, which is written
conditionally on its version: two decisions for one customer at the same instant cannot both
pass a cap of 1 (the second's write fails, and it is decided again on the new state): DynamoDB's
optimistic locking with a version number, https://docs.aws.amazon.com/amazondynamodb/latest/
developerguide/BestPractices_OptimisticLocking.html
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dialogue.model.activity import Activity
from dialogue.model.controls import CAP_DAYS, CapLimit
from dialogue.model.customer import MAX_SENDS, CustomerState


@dataclass(frozen=True)
class Verdict:
    """`capped`: the limit that capped it (None: it goes as decided); `release`: when a held
    message may go (None: skipped, if capped)."""

    capped: str | None = None
    release: datetime | None = None


SEND = Verdict()


def check(state: CustomerState, activity: Activity, channel: str, now: datetime) -> Verdict:
    """May `activity` queue a `channel` message now? Notes the message in the log unless
    skipped (or exempt)."""
    if activity.cap_exempt:
        return SEND
    _forget_old(state, now)
    cap, at, label = activity.frequency_cap, now, None
    if cap is not None:
        capped = _over(state, cap.limits, channel, now)
        if capped is not None:
            if cap.then == "skip":
                return Verdict(capped.label)
            at, label = _first_allowed(state, cap.limits, channel, now), capped.label
    _note(state, channel, at)
    return Verdict(label, at) if label else SEND


def _near(state: CustomerState, limit: CapLimit, channel: str, at: datetime) -> list[int]:
    """The noted sends this limit counts that are less than its window away from `at` (before
    or after: a held message noted for later counts too)."""
    if limit.channel and limit.channel != channel:
        return []  # a limit of another channel does not cap this message
    window, t = limit.window.total_seconds(), at.timestamp()
    channels = [limit.channel] if limit.channel else list(state.sends)
    return sorted(s for c in channels for s in state.sends.get(c, ()) if abs(s - t) < window)


def _over(state: CustomerState, limits: list[CapLimit], channel: str,
          at: datetime) -> CapLimit | None:
    return next((lim for lim in limits if len(_near(state, lim, channel, at)) >= lim.messages),
                None)


def _first_allowed(state: CustomerState, limits: list[CapLimit], channel: str,
                   now: datetime) -> datetime:
    """The first instant from `now` at which no limit is reached: moved past the send that
    keeps each limit full, until none does (each step passes one noted send: bounded)."""
    at = now
    for _ in range(len(limits) * (MAX_SENDS * 2 + 2)):
        limit = _over(state, limits, channel, at)
        if limit is None:
            return at
        near = _near(state, limit, channel, at)
        later = [s for s in near if s >= at.timestamp()]
        blocking = later[0] if later else near[0]
        at = datetime.fromtimestamp(blocking, UTC) + limit.window
    return at  # pragma: no cover - every step passes a send


def _note(state: CustomerState, channel: str, at: datetime) -> None:
    log = state.sends.setdefault(channel, [])
    insort(log, int(at.timestamp()))
    del log[:-MAX_SENDS]


def _forget_old(state: CustomerState, now: datetime) -> None:
    oldest = (now - timedelta(days=CAP_DAYS)).timestamp()
    for channel, log in list(state.sends.items()):
        kept = [s for s in log if s > oldest]
        if kept:
            state.sends[channel] = kept
        else:
            del state.sends[channel]
