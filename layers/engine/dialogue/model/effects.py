"""Effects: what the engine decided, for adapters to carry out. Each has an idempotency `key`
(activity, element, customer, entry, and the state's incarnation) so that a retry can never act
twice, and a customer whose state was created again (its item lost or restored) never collides
with the rows of its earlier lifetime: the entry counter starts again, the incarnation does not."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import Strict
from .controls import QuietHours, RateLimit


class Effect(Strict):
    activity_id: str
    element_id: str
    subject: str
    entry: int
    at: datetime
    incarnation: str = ""  # the state's lifetime (`CustomerState.incarnation`); "" before it

    @property
    def key(self) -> str:
        key = f"{self.activity_id}/{self.element_id}/{self.subject}/{self.entry}"
        return f"{key}/{self.incarnation}" if self.incarnation else key


class MessageQueued(Effect):
    type: Literal["message"] = "message"
    channel: Literal["email", "sms"]
    template: str
    reply_to: str | None = None
    send_immediately: bool = False
    event_id: str  # the event that led here
    # What the template may use besides the customer: the event's detail, this run's coupons.
    context: dict[str, Any] = {}
    quiet_hours: QuietHours | None = None  # the activity's, applied at send time (delivery)
    # Capped by a frequency cap (its window, "1 per 1 days"): held until `not_before`, or
    # skipped (none): delivery then marks it suppressed with that reason, never sends it.
    capped: str | None = None
    not_before: datetime | None = None
    rate_limit: RateLimit | None = None  # the activity's: sent through the release function


class CouponIssued(Effect):
    type: Literal["coupon"] = "coupon"
    promotion: str
    code: str  # unguessable, drawn by the caller's code source (see engine.flow.Run)
    expires_at: datetime


class SegmentAdded(Effect):
    type: Literal["segment_added"] = "segment_added"
    segment: str
    until: datetime | None = None


class SegmentRemoved(Effect):
    type: Literal["segment_removed"] = "segment_removed"
    segment: str


class WaitStarted(Effect):
    """A customer parked until `due_at`: at a wait, or at a later trigger with a timeout. The
    adapters turn it into a timer (`engine.timers.TimerRef`) that calls `engine.wake.wake`."""

    type: Literal["wait_started"] = "wait_started"
    due_at: datetime


class ElementReached(Effect):
    """Per-element counters: how many customers reached each element."""

    type: Literal["reached"] = "reached"


AnyEffect = Annotated[
    MessageQueued | CouponIssued | SegmentAdded | SegmentRemoved | WaitStarted | ElementReached,
    Field(discriminator="type"),
]
