"""Timers: which customer to wake, and in which time bucket.

Waits are grouped into buckets of a few minutes so that Step Functions runs one execution per
bucket, not one per customer: its cost and its open executions then grow with time, not with
the number of customers waiting (a million waits in a month need at most one execution per
bucket). Pure: the adapters store the rows and start the executions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dialogue.model.effects import WaitStarted

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def bucket_end(due_at: datetime, minutes: int) -> datetime:
    """The end of the bucket `due_at` falls in: `due_at` rounded up to the next multiple of
    `minutes` since the Unix epoch (in UTC); a time exactly on a boundary stays.

    Rounding up, never down, is what makes the promise hold: a customer resumes within one
    bucket after their due time, never before it.
    """
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        raise ValueError(f"due_at must be time-zone aware: {due_at.isoformat()}")
    if minutes < 1:
        raise ValueError(f"a bucket lasts at least one minute, not {minutes}")
    elapsed = (due_at - EPOCH) // _MICROSECOND
    step = minutes * 60 * 1_000_000
    return EPOCH + -(-elapsed // step) * step * _MICROSECOND


@dataclass(frozen=True)
class TimerRef:
    """One customer's timer: enough to find the instance it may wake (`engine.wake.wake`).

    Nothing but identifiers and the due time: the customer's state says whether the timer is
    still wanted, so a stale timer (the customer moved on) costs a read and changes nothing.
    """

    subject: str
    activity_id: str
    entry: int
    element_id: str
    due_at: datetime

    @property
    def key(self) -> str:
        """Unique per customer, activity entry and element: one row per parked instance."""
        return f"{self.subject}#{self.activity_id}#{self.entry}#{self.element_id}"

    @classmethod
    def from_effect(cls, effect: WaitStarted) -> TimerRef:
        return cls(subject=effect.subject, activity_id=effect.activity_id, entry=effect.entry,
                   element_id=effect.element_id, due_at=effect.due_at)
