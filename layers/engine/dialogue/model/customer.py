"""One customer's (or guest's) state: profile, behaviour, segments and dialogue positions.

Kept as one DynamoDB item so that an event costs one read and one conditional write. Histories
are bounded (newest kept) so the item stays far below DynamoDB's 400 KB.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

from .base import Record
from .events import Profile

MAX_ORDERS = 200
MAX_BEHAVIOUR = 500
MAX_PROCESSED = 200
# How long an applied event id is remembered: longer than any path can hold an event before
# delivering it again (EventBridge retries 1 day + the events queue 4 days + its FIFO dead-letter
# queue, which restarts the clock, 14 days + a redrive back through the events queue 4 days).
PROCESSED_FOR = timedelta(days=25)
MAX_SEGMENT_HISTORY = 100



def _unix_seconds(at: datetime) -> int:
    return int(at.timestamp())


# The time of a history record (an order, a behaviour occurrence), stored as Unix seconds: the
# histories are most of a state and their times its least compressible part (a quarter shorter
# than ISO once compressed). Rules' windows are days; the fraction of a second is dropped.
HistoryTime = Annotated[datetime, PlainSerializer(_unix_seconds, return_type=int,
                                                  when_used="json")]


class ConsentState(Record):
    email: bool = False
    sms: bool = False
    # Opt-out model for behaviour recording: recorded unless the customer refused it.
    tracking: bool = True


class LineRecord(Record):
    product_id: str
    categories: list[str] = []
    manufacturer: str | None = None
    quantity: int
    value: Decimal
    discounted: bool = False


class OrderRecord(Record):
    order_id: str  # a re-sent order is known by it
    at: HistoryTime
    total: Decimal
    lines: list[LineRecord]
    promotion_codes: list[str] = []


class CartState(Record):
    cart_id: str
    updated_at: datetime
    lines: list[LineRecord] = []

    @property
    def value(self) -> Decimal:
        return sum((line.value for line in self.lines), Decimal(0))


class Occurrence(Record):
    """One behaviour event: a search, a view, a page, a social act, a custom event. (Its event
    id is not kept: rules never read it, and random ids are what compresses worst.)"""

    at: HistoryTime
    kind: str  # the detail-type, or the custom event's name
    fields: dict[str, str] = {}
    tags: list[str] = []  # multi-valued: categories of a view


class Membership(Record):
    since: datetime
    until: datetime | None = None
    by: str | None = None  # the activity that added the customer

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


class SegmentChange(Record):
    """Entered or left a segment: the membership history statistics and traces are built from."""

    segment: str
    change: Literal["added", "removed"]
    at: datetime
    by: str | None = None  # the activity that made the change ("rule" for rule-based segments)
    element: str | None = None  # the activity's element that made it


class Instance(Record):
    """One run of a customer through an activity, parked at a wait or a later trigger."""

    entry: int
    element: str
    since: datetime
    due_at: datetime | None = None


class Journey(Record):
    entries: int = 0
    last_entered_at: datetime | None = None
    waiting: list[Instance] = []


class CustomerState(Record):
    subject: str  # "customer:<id>" or "guest:<personalization id>"
    version: int = 0  # optimistic lock: every write is conditional on it
    # This state's lifetime: drawn when the state is created (by the store), part of every effect
    # key, so a state created again (item lost, restored) never collides with its old rows.
    incarnation: str = ""
    profile: Profile = Profile()
    consent: ConsentState = ConsentState()
    registered_at: datetime | None = None
    orders: list[OrderRecord] = []  # oldest first (`record.keep_in_time`), as behaviour
    order_count: int = 0  # lifetime, unlike the bounded list
    total_spent: Decimal = Decimal(0)
    cart: CartState | None = None
    behaviour: list[Occurrence] = []
    segments: dict[str, Membership] = {}
    segment_history: list[SegmentChange] = []
    journeys: dict[str, Journey] = {}
    # The shop-local day of the last daily check applied: a re-run of that day changes nothing.
    last_daily: date | None = None
    processed: dict[str, int] = Field(
        default={}, description="exactly-once: the digest of each event id applied in the last "
        "PROCESSED_FOR (at most MAX_PROCESSED), with the UTC day (ordinal) it was applied")

    @property
    def customer_id(self) -> str | None:
        kind, _, ident = self.subject.partition(":")
        return ident if kind == "customer" else None

    def has_processed(self, event_id: str) -> bool:
        return event_digest(event_id) in self.processed

    def remember(self, event_id: str, now: datetime) -> None:
        """Note `event_id` as applied at `now`; forget those applied before the window. The
        dict keeps insertion order, so the oldest come first: only the head is looked at."""
        processed = self.processed
        processed[event_digest(event_id)] = now.toordinal()
        oldest = (now - PROCESSED_FOR).toordinal()
        while processed:
            first = next(iter(processed))
            if processed[first] >= oldest and len(processed) <= MAX_PROCESSED:
                break
            del processed[first]

    def in_segment(self, segment: str, now: datetime) -> bool:
        m = self.segments.get(segment)
        return m is not None and m.active(now)


@lru_cache(maxsize=256)  # an event's id is looked up, then remembered: digested once
def event_digest(event_id: str) -> str:
    """64 bits of blake2b, base64url (11 characters): a UUID event id costs a third of its size,
    and a new id is taken for one of a customer's 200 with odds of 1 in 10^17."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
