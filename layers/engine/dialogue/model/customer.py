"""One customer's (or guest's) state: profile, behaviour, segments and dialogue positions.

Kept as one DynamoDB item so that an event costs one read and one conditional write. Histories
are bounded (newest kept) so the item stays far below DynamoDB's 400 KB.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from .base import Record
from .events import Profile

MAX_ORDERS = 200
MAX_BEHAVIOUR = 500
MAX_PROCESSED = 200
MAX_SEGMENT_HISTORY = 100


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
    order_id: str
    event_id: str
    at: datetime
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
    """One behaviour event: a search, a view, a page, a social act, a custom event."""

    event_id: str
    at: datetime
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
    profile: Profile = Profile()
    consent: ConsentState = ConsentState()
    registered_at: datetime | None = None
    orders: list[OrderRecord] = []
    order_count: int = 0  # lifetime, unlike the bounded list
    total_spent: Decimal = Decimal(0)
    cart: CartState | None = None
    behaviour: list[Occurrence] = []
    segments: dict[str, Membership] = {}
    segment_history: list[SegmentChange] = []
    journeys: dict[str, Journey] = {}
    # The shop-local day of the last daily check applied: a re-run of that day changes nothing.
    last_daily: date | None = None
    processed: list[str] = Field(default=[], description="recent event ids, for exactly-once")

    @property
    def customer_id(self) -> str | None:
        kind, _, ident = self.subject.partition(":")
        return ident if kind == "customer" else None

    def in_segment(self, segment: str, now: datetime) -> bool:
        m = self.segments.get(segment)
        return m is not None and m.active(now)
