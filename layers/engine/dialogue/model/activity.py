"""Activities ("dialogues"): a flat list of elements linked by id, the first one a trigger.

Elements are told apart by `type`. Graph rules that need the whole document or the segment
catalogue (references, reachability, once-trigger first…) live in `engine.checks`, so that every
problem is reported with its JSON path rather than the first one only.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .base import Day, Id, Strict, ZoneName
from .controls import FrequencyCap, Holdout, QuietHours, RateLimit
from .events import DETAILS, CustomEvent
from .matching import TextMatch, TimeFrame
from .targets import Target


class Node(Strict):
    id: Id
    label: str | None = None
    next: Id | None = None


Unit = Literal["minutes", "hours", "days", "weeks", "months"]
# The longest a wait or a timeout may last: ten years, in each unit (no due date can overflow).
MAX_AMOUNT: dict[str, int] = {"minutes": 10 * 365 * 24 * 60, "hours": 10 * 365 * 24,
                              "days": 10 * 365, "weeks": 10 * 52, "months": 10 * 12}


def _at_most_ten_years(amount: int, info: ValidationInfo) -> int:
    """`amount` (declared after `unit`) within MAX_AMOUNT for its unit."""
    unit = info.data.get("unit")
    if unit in MAX_AMOUNT and amount > MAX_AMOUNT[unit]:
        raise ValueError(f"at most {MAX_AMOUNT[unit]:,} {unit} (ten years)")
    return amount


def _duration_schema(schema: dict[str, Any]) -> None:
    """Editors see each unit's maximum too."""
    schema["allOf"] = [{"if": {"properties": {"unit": {"const": unit}}, "required": ["unit"]},
                        "then": {"properties": {"amount": {"maximum": most}}}}
                       for unit, most in MAX_AMOUNT.items()]


class Timeout(Strict):
    """How long a customer waits at a later trigger; who has not fired it by then goes on at
    `next` (none: their path ends there). "No order within 7 days → path B"."""

    model_config = ConfigDict(json_schema_extra=_duration_schema)

    unit: Unit
    amount: int = Field(ge=1, le=MAX_AMOUNT["minutes"])
    next: Id | None = None

    _bounded = field_validator("amount")(_at_most_ten_years)


class Interval(Strict):
    """A duration a control counts: `amount` `unit`, days and longer on the activity's calendar."""

    model_config = ConfigDict(json_schema_extra=_duration_schema)

    unit: Unit
    amount: int = Field(ge=1, le=MAX_AMOUNT["minutes"])

    _bounded = field_validator("amount")(_at_most_ten_years)


class TestMode(Strict):
    """Every wait and every timeout of the activity lasts `wait_minutes` minutes, so that a
    marketer can walk a month-long dialogue through in an afternoon."""

    __test__ = False  # not a pytest test class, whatever its name
    wait_minutes: int = Field(ge=1, le=1440)


# --- triggers ---------------------------------------------------------------------------------
class Trigger(Node):
    """Every trigger may carry a timeout; it applies when the trigger is not the first element."""

    timeout: Timeout | None = None


class RegistersTrigger(Trigger):
    type: Literal["registers"]


class PlacesOrderTrigger(Trigger):
    type: Literal["places_order"]
    min_total: Decimal | None = Field(default=None, ge=0)
    categories: list[str] = []


class AbandonsCartTrigger(Trigger):
    """Daily check. daily: carts abandoned exactly `days` ago; once: between min and max days."""

    type: Literal["abandons_cart"]
    mode: Literal["daily", "once"] = "daily"
    days: int | None = Field(default=None, ge=1, le=365)
    min_days: int | None = Field(default=None, ge=1, le=365)
    max_days: int | None = Field(default=None, ge=1, le=365)

    @model_validator(mode="after")
    def _days_for_mode(self) -> AbandonsCartTrigger:
        if self.mode == "daily" and (self.days is None or self.min_days or self.max_days):
            raise ValueError("mode 'daily' takes 'days' (and not min_days/max_days)")
        if self.mode == "once":
            if self.min_days is None or self.max_days is None or self.days is not None:
                raise ValueError("mode 'once' takes 'min_days' and 'max_days' (and not 'days')")
            if self.min_days > self.max_days:
                raise ValueError("min_days is greater than max_days")
        return self


class InSegmentTrigger(Trigger):
    type: Literal["in_segment"]
    segments: list[Id] = Field(min_length=1)
    mode: Literal["once", "daily"] = "once"


class BirthdayTrigger(Trigger):
    type: Literal["birthday"]
    days_before: int = Field(default=0, ge=0, le=365)


class SearchesTrigger(Trigger):
    type: Literal["searches"]
    keyword: TextMatch
    times: int = Field(default=1, ge=1, le=5)
    time_frame: TimeFrame = TimeFrame()


class SocialTrigger(Trigger):
    type: Literal["social_participation"]
    kind: Literal["review", "rating", "like", "comment", "any"] = "any"
    times: int = Field(default=1, ge=1)
    time_frame: TimeFrame = TimeFrame()


class PromotionCheckoutTrigger(Trigger):
    type: Literal["checks_out_with_promotion"]
    promotion: str = Field(min_length=1)
    times: int = Field(default=1, ge=1)
    time_frame: TimeFrame = TimeFrame()


class ParameterMatch(Strict):
    """One parameter of the awaited event: a custom parameter or a field of a shop event."""

    name: str = Field(min_length=1)
    match: TextMatch


class WaitForEventTrigger(Trigger):
    """A custom event by name, or a shop event by detail-type (CategoryViewed, PageVisited…)."""

    type: Literal["wait_for_event"]
    event: str = Field(min_length=1, max_length=128)
    parameters: list[ParameterMatch] = Field(default=[], max_length=2)
    times: int = Field(default=1, ge=1)
    time_frame: TimeFrame = TimeFrame()

    @model_validator(mode="after")
    def _countable(self) -> WaitForEventTrigger:
        model = DETAILS.get(self.event)
        if model is not None and not model.BEHAVIOUR and model is not CustomEvent \
                and self.times > 1:
            raise ValueError(f"{self.event} is not kept in the behaviour history: "
                             "'times' must be 1")
        return self

    @property
    def detail_type(self) -> str:
        return self.event if self.event in DETAILS else "CustomEvent"


class MessageOutcomeTrigger(Trigger):
    """After an e-mail of this activity: an e-mail of that element's template was delivered to
    the customer's mail server or bounced, or the customer opened it (or clicked a link of it),
    as SES reports it (`EmailDelivered`, `EmailBounced`, `EmailOpened`, `EmailClicked`). With a
    timeout, a fallback: "no open within 2 days → SMS", "bounced → SMS". Never the first
    element; only e-mail (dialogue receives no SMS delivery status)."""

    type: Literal["message_outcome"]
    message: Id  # the send_message element (e-mail) whose outcome is awaited
    outcome: Literal["delivered", "opened", "clicked", "bounced"]


class Wait(Node):
    """Days, weeks and months are counted on the activity's calendar (same local time); months
    are calendar months (31 January + 1 month = 28 or 29 February)."""

    model_config = ConfigDict(json_schema_extra=_duration_schema)

    type: Literal["wait"]
    unit: Unit
    amount: int = Field(ge=1, le=MAX_AMOUNT["minutes"])

    _bounded = field_validator("amount")(_at_most_ten_years)


# --- targets and branches --------------------------------------------------------------------
class TargetElement(Node):
    """Customers who fail any condition stop on this path."""

    type: Literal["target"]
    conditions: list[Target] = Field(min_length=1)


class Path(Strict):
    name: str = Field(min_length=1)
    conditions: list[Target] = []
    percent: Decimal | None = Field(default=None, gt=0, le=100)
    next: Id | None = None


class Branch(Node):
    type: Literal["branch"]
    mode: Literal["first", "all", "random"] = "first"
    paths: list[Path] = Field(min_length=2)

    @model_validator(mode="after")
    def _percentages(self) -> Branch:
        if self.next is not None:
            raise ValueError("a branch continues through its paths' 'next', not its own")
        percents = [p.percent for p in self.paths]
        if self.mode == "random":
            if any(p is None for p in percents):
                raise ValueError("mode 'random' needs a 'percent' on every path")
            total = sum(p for p in percents if p is not None)
            if total != 100:
                raise ValueError(f"random path percentages sum to {total}, not 100")
        elif any(p is not None for p in percents):
            raise ValueError("'percent' is only for mode 'random'")
        names = [p.name for p in self.paths]
        if len(set(names)) != len(names):
            raise ValueError("path names must be unique")
        return self


# --- actions ---------------------------------------------------------------------------------
class SendMessage(Node):
    """E-mail (template, reply-to) or SMS (text template); queued for `send_message`."""

    type: Literal["send_message"]
    channel: Literal["email", "sms"]
    template: str = Field(min_length=1)
    reply_to: str | None = None
    send_immediately: bool = False


class IssueCoupon(Node):
    type: Literal["issue_coupon"]
    promotion: str = Field(min_length=1)
    valid_days: int = Field(default=30, ge=1, le=3650)


class AddToSegment(Node):
    type: Literal["add_to_segment"]
    segment: Id
    for_days: int | None = Field(default=None, ge=1, le=3650)


class RemoveFromSegment(Node):
    type: Literal["remove_from_segment"]
    segment: Id


EventTrigger = (
    RegistersTrigger | PlacesOrderTrigger | SearchesTrigger | SocialTrigger
    | PromotionCheckoutTrigger | WaitForEventTrigger
)
DailyTrigger = AbandonsCartTrigger | InSegmentTrigger | BirthdayTrigger
Action = SendMessage | IssueCoupon | AddToSegment | RemoveFromSegment
Element = Annotated[
    RegistersTrigger | PlacesOrderTrigger | AbandonsCartTrigger | InSegmentTrigger
    | BirthdayTrigger | SearchesTrigger | SocialTrigger | PromotionCheckoutTrigger
    | WaitForEventTrigger | MessageOutcomeTrigger | Wait | TargetElement | Branch | SendMessage
    | IssueCoupon | AddToSegment | RemoveFromSegment,
    Field(discriminator="type"),
]

# Which shop event can fire each event-driven trigger.
TRIGGER_EVENTS: dict[str, str] = {
    "registers": "CustomerRegistered",
    "places_order": "OrderPlaced",
    "checks_out_with_promotion": "OrderPlaced",
    "searches": "SearchPerformed",
    "social_participation": "SocialParticipation",
}


def trigger_event(element: Element) -> str | None:
    """The detail-type that can fire this element, or None if it is not an event trigger."""
    if isinstance(element, WaitForEventTrigger):
        return element.detail_type
    if isinstance(element, MessageOutcomeTrigger):
        return "CustomEvent"  # what the engagement function makes of SES's event for the mail
    return TRIGGER_EVENTS.get(element.type)


class Goal(Strict):
    """What ends a customer's run at once, wherever they wait, counted as "reached goal": an
    event (a shop event by detail-type or a custom event by name, with up to two parameters),
    or conditions that hold (checked on each of the customer's events, timers and daily
    checks), e.g. no longer in a segment."""

    event: str | None = Field(default=None, min_length=1, max_length=128)
    parameters: list[ParameterMatch] = Field(default=[], max_length=2)
    conditions: list[Target] = Field(default=[], max_length=10)

    @model_validator(mode="after")
    def _one_kind(self) -> Goal:
        if (self.event is None) == (not self.conditions):
            raise ValueError("a goal names either an 'event' or 'conditions', not both")
        if self.parameters and self.event is None:
            raise ValueError("'parameters' belong to a goal's 'event'")
        return self


class Activity(Strict):
    """One dialogue. Dates are whole days in `time_zone`; the end date is inclusive."""

    schema_version: Literal[1] = 1
    id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    # paused: nobody enters and nobody waiting goes on until it is active again (`on_resume`);
    # inactive: nobody enters and the customers waiting in it leave (docs/activities.md).
    state: Literal["active", "inactive", "paused"] = "active"
    start_date: Day | None = None
    end_date: Day | None = None
    time_zone: ZoneName = "UTC"
    repeatable: bool = False
    max_entries: int | None = Field(default=None, ge=1, le=10_000)
    min_interval: Interval | None = None
    goals: list[Goal] = Field(default=[], max_length=10)
    holdout: Holdout | None = None
    # What the waits that ran out while the activity was paused do on resume: go on at once,
    # or go on at once but send their messages at the next send time (not send_immediately).
    on_resume: Literal["at_once", "next_send_window"] = "at_once"
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    cap_exempt: bool = False  # service messages: never capped, and not counted by caps
    rate_limit: RateLimit | None = None
    # A guest's (anonymous browser's) messages and coupons: kept until a login links the browser
    # to a customer, or dropped at once (docs/identity.md); counted either way, with the reason.
    guest_messages: Literal["hold", "drop"] = Field(
        default="hold", description="a guest's messages and coupons: `hold` until a login "
        "links the browser to a customer (7 days at most), or `drop` at once")
    # Keyed runs: the entry event's field (or custom event parameter) that keys a run, e.g.
    # "order_id": one run per value at a time; later events with that field reach its run only.
    key: str | None = Field(default=None, min_length=1, max_length=64,
                            pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Safe editing: customers waiting at an element an edit removed go on at the element named
    # here ({"old id": "new id"}); those waiting at a removed element not named here leave,
    # counted as @ended:element_removed.
    moved: dict[Id, Id] = Field(default={}, max_length=100)
    test_mode: TestMode | None = None
    elements: list[Element] = Field(min_length=2)

    @model_validator(mode="after")
    def _dates(self) -> Activity:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError("start_date is after end_date")
        return self

    @model_validator(mode="after")
    def _exempt_or_capped(self) -> Activity:
        if self.cap_exempt and self.frequency_cap is not None:
            raise ValueError("an activity is either cap_exempt or has a frequency_cap")
        return self

    @model_validator(mode="after")
    def _keyed(self) -> Activity:
        if self.key is not None and trigger_event(self.elements[0]) is None:
            raise ValueError("'key' is for an activity whose first element is an event trigger")
        return self

    @field_validator("max_entries", "min_interval", "key")
    @classmethod
    def _repeatable_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("repeatable") is False:
            raise ValueError("only for a repeatable activity (set \"repeatable\": true)")
        return value

    @model_validator(mode="after")
    def _moved(self) -> Activity:
        ids = {e.id for e in self.elements}
        for old, new in self.moved.items():
            if old in ids:
                raise ValueError(f"moved: {old!r} is still an element: its customers stay there")
            if new not in ids:
                raise ValueError(f"moved: {old!r} goes to {new!r}, which is no element")
        return self

    @cached_property
    def version(self) -> str:
        """This version of the activity (a digest of its content but `state`): recorded with
        each entry, so what a customer went through is known after an edit."""
        text = self.model_dump_json(exclude={"state"})
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()

    @cached_property
    def by_id(self) -> dict[str, Element]:
        return {e.id: e for e in self.elements}

    @property
    def entry(self) -> Element:
        return self.elements[0]

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local_day(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    @cached_property
    def window(self) -> tuple[datetime | None, datetime | None]:
        """[start of the start date, start of the day after the end date) in `time_zone`."""
        start = day_start(self.start_date, self.zone) if self.start_date else None
        end = day_start(self.end_date + timedelta(days=1), self.zone) if self.end_date else None
        return start, end

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    def is_live(self, now: datetime) -> bool:
        """Active (not paused), and `now` falls between the start date and the end of the end
        date."""
        if self.state != "active":
            return False
        start, end = self.window
        return (start is None or now >= start) and (end is None or now < end)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone)
