"""One customer's (or guest's) state: profile, behaviour, segments and dialogue positions.

Kept as one DynamoDB item so that an event costs one read and one conditional write. Histories
are bounded in count and in bytes (newest kept), every text the shop sends is bounded by the
event contract, and the event ids of the exactly-once window are bounded per customer: so the
item stays below MAX_STATE_BYTES, under DynamoDB's 400 KB (docs/events.md, "Bounds").
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
from .effects import CouponIssued, MessageQueued
from .events import Profile

MAX_ORDERS = 200
MAX_ORDERS_JSON = 48_000  # bytes of the order history as JSON: the oldest orders leave first
MAX_BEHAVIOUR = 500
MAX_BEHAVIOUR_JSON = 64_000  # likewise for behaviour: a few huge URLs cannot fill the item
# How long an applied event id is remembered: longer than any path can hold an event before
# delivering it again (EventBridge retries 1 day + the events queue 4 days + its FIFO dead-letter
# queue, which restarts the clock, 14 days + a redrive back through the events queue 4 days).
# Every id of that window is kept, however many: the window is a time, not a count a chatty
# customer could exhaust. A customer may have MAX_EVENTS_IN_WINDOW events applied within it;
# more are refused (`TooManyEvents`) rather than remembered by forgetting others.
PROCESSED_FOR = timedelta(days=25)
MAX_EVENTS_IN_WINDOW = 4_000  # 160 a day: 88 KB of digests at most
MAX_SEGMENT_HISTORY = 100
MAX_SENDS = 100  # per channel, within a cap's longest window (`engine.caps`)
# The largest state document the bounds allow (UTF-8 JSON; stored compressed, never larger),
# for a customer in 20 segments and 20 activities: tests/unit/test_state_bounds.py builds it.
# DynamoDB's item limit is 400 KB; the item's other attributes take a few hundred bytes.
MAX_STATE_BYTES = 350_000


class TooManyEvents(ValueError):
    """More events for one customer within PROCESSED_FOR than its state can remember."""



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
    seen: int = 0  # occurrences of `since`'s second already counted (`triggers.seen_at`)
    holdout: bool = False  # in the activity's control group: no actions (`engine.controls`)
    held: bool = False  # its wait ran out while the activity was paused
    key: str | None = None  # a keyed run's key (`Activity.key`): the order id, the cart id…


class Journey(Record):
    entries: int = 0
    last_entered_at: datetime | None = None
    seen_at_entry: int = 0  # occurrences of that second already counted (`triggers.seen_at`)
    waiting: list[Instance] = []
    version: str | None = None  # the activity's version at the last entry (`Activity.version`)


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
    # Frequency caps: the Unix seconds of the messages decided per channel within CAP_DAYS,
    # at most MAX_SENDS each (`engine.caps`).
    sends: dict[str, list[int]] = {}
    # The shop-local day of the last daily check applied: a re-run of that day changes nothing.
    last_daily: date | None = None
    processed: dict[str, int] = Field(
        default={}, description="exactly-once: the digest of each event id applied in the last "
        "PROCESSED_FOR, with the UTC day (ordinal) it was applied")
    # A guest's browser linked to a customer at login (`engine.identity`): a guest event that
    # arrives late is applied to that customer; None after logout (the default) or ever unlinked.
    linked_to: str | None = None
    linked_until: datetime | None = None  # that customer's logout: later events are not theirs
    # A guest's would-be messages and coupons, never delivered to an anonymous browser: they
    # wait for a link (`engine.identity.hold`), bounded in count and age.
    held: list[MessageQueued | CouponIssued] = []  # (`type` is left out when stored)
    # A customer's browsers ever linked (newest last, bounded): what a deletion also erases.
    browsers: list[str] = []
    # Deleted on request (`engine.forget`): the state is a tombstone; earlier-dated events refused.
    deleted_at: datetime | None = None
    set_at: dict[str, int] = Field(
        default={}, description="newer facts win: the Unix second of the fact that set each "
        "profile field ('email', 'attributes.<name>'), consent ('consent.email') and the cart")

    @property
    def customer_id(self) -> str | None:
        kind, _, ident = self.subject.partition(":")
        return ident if kind == "customer" else None

    def has_processed(self, event_id: str) -> bool:
        return event_digest(event_id) in self.processed

    def remember(self, event_id: str, now: datetime) -> None:
        """Note `event_id` as applied at `now`; forget those applied before the window. The
        dict keeps insertion order, so the oldest come first: only the head is looked at.
        Raises TooManyEvents when the window already holds MAX_EVENTS_IN_WINDOW ids."""
        processed = self.processed
        oldest = (now - PROCESSED_FOR).toordinal()
        while processed:
            first = next(iter(processed))
            if processed[first] >= oldest:
                break
            del processed[first]
        if len(processed) >= MAX_EVENTS_IN_WINDOW:
            raise TooManyEvents(
                f"{len(processed)} events of this customer applied within "
                f"{PROCESSED_FOR.days} days, at most {MAX_EVENTS_IN_WINDOW} are remembered")
        processed[event_digest(event_id)] = now.toordinal()

    def in_segment(self, segment: str, now: datetime) -> bool:
        m = self.segments.get(segment)
        return m is not None and m.active(now)


@lru_cache(maxsize=256)  # an event's id is looked up, then remembered: digested once
def event_digest(event_id: str) -> str:
    """64 bits of blake2b, base64url (11 characters): a UUID event id costs a third of its size,
    and a new id is taken for one of a customer's 4,000 with odds of 1 in 4.10^15."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
