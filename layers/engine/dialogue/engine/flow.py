"""Walk an activity's elements for one customer's entry, collecting effects.

A target that fails stops its path; a branch pushes the paths it takes; an action records an
effect and goes on; a wait or a later trigger parks the customer there. An element runs at most
once per entry, so converging paths never act twice.
"""

from __future__ import annotations

import calendar
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from dialogue.model.activity import (
    AbandonsCartTrigger,
    Activity,
    AddToSegment,
    BirthdayTrigger,
    Branch,
    Element,
    InSegmentTrigger,
    IssueCoupon,
    MessageOutcomeTrigger,
    PlacesOrderTrigger,
    PromotionCheckoutTrigger,
    RegistersTrigger,
    RemoveFromSegment,
    SearchesTrigger,
    SendMessage,
    SocialTrigger,
    TargetElement,
    Wait,
    WaitForEventTrigger,
)
from dialogue.model.customer import (
    MAX_SEGMENT_HISTORY,
    CustomerState,
    Instance,
    Journey,
    Membership,
    SegmentChange,
)
from dialogue.model.effects import (
    AnyEffect,
    CouponIssued,
    ElementReached,
    MessageQueued,
    SegmentAdded,
    SegmentRemoved,
    WaitStarted,
)

from . import caps
from .targets import holds
from .triggers import seen_at

Chance = Callable[[str], float]
Codes = Callable[[], str]
COUPON_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till
EXIT = "@exit:"  # + why a run ended; counted once per run, beside the element counts (`controls`)
COMPLETED = EXIT + "completed"  # walked to its end: no element of the run waits any more


def new_coupon_code() -> str:
    """Unguessable: 12 characters of a 32-letter alphabet, 60 bits from the OS's CSPRNG."""
    return "".join(secrets.choice(COUPON_ALPHABET) for _ in range(12))


def stable_chance(key: str) -> float:
    """A uniform number in [0, 1) fixed by `key`: a retried event takes the same random path."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:13], 16) / 16**13


class ElementFailed(Exception):
    """An element raised while a customer was walked through it (its cause is chained)."""

    def __init__(self, element_id: str):
        super().__init__(element_id)
        self.element_id = element_id


@dataclass
class Run:
    """One entry of one customer into one activity, walked at `now`."""

    activity: Activity
    state: CustomerState
    journey: Journey
    entry: int
    now: datetime
    event_id: str
    chance: Chance = stable_chance
    codes: Codes = new_coupon_code
    event: dict[str, Any] = field(default_factory=dict)  # the detail, JSON-ready, for templates
    effects: list[AnyEffect] = field(default_factory=list)
    coupons: dict[str, dict[str, str]] = field(default_factory=dict)  # this run's, by promotion
    holdout: bool = False  # the control group: walked (waits, goals) without any action
    catch_up: bool = False  # going on after a pause: messages wait for the next send time
    key: str | None = None  # a keyed run's key, for templates as `run.key`

    def _base(self, element: Element) -> dict[str, Any]:
        return {"activity_id": self.activity.id, "element_id": element.id,
                "subject": self.state.subject, "entry": self.entry, "at": self.now,
                "incarnation": self.state.incarnation}

    def walk(self, start: str | None) -> None:
        """Walk on from `start`; an element that fails raises ElementFailed naming it. A run
        that no longer waits anywhere afterwards has ended: counted as `COMPLETED`."""
        stack, seen = [start], set()
        while stack:
            element_id = stack.pop()
            if element_id is None or element_id in seen:
                continue
            seen.add(element_id)
            try:
                element = self.activity.by_id[element_id]
                self.reached(element)
                stack.extend(reversed(self._step(element)))
            except Exception as e:
                raise ElementFailed(element_id) from e
        if not any(i.entry == self.entry for i in self.journey.waiting):
            self.effects.append(ElementReached.model_construct(  # type: ignore[arg-type]
                **{**self._base(self.activity.entry), "element_id": COMPLETED}))

    def reached(self, element: Element) -> None:
        if self.holdout:
            return  # the control group is counted apart (`controls.HOLDOUT`)
        self.effects.append(ElementReached.model_construct(**self._base(element)))  # type: ignore[arg-type]

    def _step(self, el: Element) -> list[str | None]:
        """Carry out one element; return the ids to go on with (in order)."""
        base = self._base(el)
        if self.holdout and isinstance(el, SendMessage | IssueCoupon | AddToSegment
                                       | RemoveFromSegment):
            return [el.next]  # no action for the control group
        match el:
            case TargetElement():
                ok = all(holds(c, self.state, self.activity, self.now) for c in el.conditions)
                return [el.next] if ok else []
            case Branch():
                return self._branch(el)
            case SendMessage():
                verdict = caps.check(self.state, self.activity, el.channel, self.now)
                if verdict.capped is not None:
                    self.effects.append(ElementReached.model_construct(  # type: ignore[arg-type]
                        **{**base, "element_id": f"@capped:{verdict.capped}"}))
                context: dict[str, Any] = {"event": self.event, "coupons": dict(self.coupons),
                                           "activity": {"id": self.activity.id,
                                                        "name": self.activity.name}}
                if self.coupons:
                    context["coupon"] = list(self.coupons.values())[-1]
                if self.key is not None:
                    context["run"] = {"key": self.key}
                self.effects.append(MessageQueued.model_construct(
                    **base, channel=el.channel, template=el.template, reply_to=el.reply_to,
                    send_immediately=el.send_immediately and not self.catch_up,
                    event_id=self.event_id, quiet_hours=self.activity.quiet_hours,
                    capped=verdict.capped, not_before=verdict.release,
                    rate_limit=self.activity.rate_limit, context=context))
            case IssueCoupon():
                code, expires = self.codes(), self.now + timedelta(days=el.valid_days)
                self.coupons.pop(el.promotion, None)  # the latest is last
                self.coupons[el.promotion] = {"code": code, "promotion": el.promotion,
                                              "expires_at": expires.isoformat()}
                self.effects.append(CouponIssued.model_construct(
                    **base, promotion=el.promotion, code=code, expires_at=expires))
            case AddToSegment():
                if not self.state.in_segment(el.segment, self.now):  # already in: no change
                    self._end_expired(el, base)
                    until = self.now + timedelta(days=el.for_days) if el.for_days else None
                    self.state.segments[el.segment] = Membership.model_construct(
                        since=self.now, until=until, by=self.activity.id)
                    self._history(el.segment, "added", el.id)
                    self.effects.append(SegmentAdded.model_construct(
                        **base, segment=el.segment, until=until))
            case RemoveFromSegment():
                # A membership whose time ran out (not yet ended by the daily check) ends here too:
                # its row goes and its exit is counted, once.
                if el.segment in self.state.segments:
                    del self.state.segments[el.segment]
                    self._history(el.segment, "removed", el.id)
                    self.effects.append(SegmentRemoved.model_construct(**base, segment=el.segment))
            case Wait():
                due = due_after(self.activity, self.now, el.amount, el.unit)
                self._park(el, due)
                self.effects.append(WaitStarted.model_construct(**base, due_at=due))
                return []
            case (RegistersTrigger() | PlacesOrderTrigger() | SearchesTrigger() | SocialTrigger()
                  | PromotionCheckoutTrigger() | WaitForEventTrigger() | MessageOutcomeTrigger()
                  | AbandonsCartTrigger()
                  | InSegmentTrigger() | BirthdayTrigger()):
                # A later trigger: fires only for customers waiting here. With a timeout, a timer
                # takes those who have not fired it by then to the timeout's path.
                timeout = el.timeout
                until = (due_after(self.activity, self.now, timeout.amount, timeout.unit)
                         if timeout is not None else None)
                self._park(el, until)
                if until is not None:
                    self.effects.append(WaitStarted.model_construct(**base, due_at=until))
                return []
        return [el.next]

    def _branch(self, el: Branch) -> list[str | None]:
        def qualifies(i: int) -> bool:
            return all(holds(c, self.state, self.activity, self.now)
                       for c in el.paths[i].conditions)

        match el.mode:
            case "first":
                chosen = next((i for i in range(len(el.paths)) if qualifies(i)), None)
                return [] if chosen is None else [el.paths[chosen].next]
            case "all":
                return [p.next for i, p in enumerate(el.paths) if qualifies(i)]
            case "random":
                key = f"{self.event_id}/{self.activity.id}/{el.id}"
                roll = Decimal(str(self.chance(key))) * 100
                edge = Decimal(0)
                for i, path in enumerate(el.paths):
                    edge += path.percent or 0
                    if roll < edge:
                        return [path.next] if qualifies(i) else []
                return []
        return []  # pragma: no cover

    def _history(self, segment: str, change: Literal["added", "removed"], element: str) -> None:
        history = self.state.segment_history
        history.append(SegmentChange.model_construct(segment=segment, change=change, at=self.now,
                                                     by=self.activity.id, element=element))
        del history[:-MAX_SEGMENT_HISTORY]

    def _end_expired(self, el: AddToSegment, base: dict[str, Any]) -> None:
        """A membership whose time ran out before the daily check ended it: end it first, so
        every entry has its exit (history, statistics, SegmentLeft)."""
        if el.segment in self.state.segments:
            del self.state.segments[el.segment]
            self._history(el.segment, "removed", el.id)
            self.effects.append(SegmentRemoved.model_construct(**base, segment=el.segment))

    def _park(self, el: Element, due: datetime | None) -> None:
        self.journey.waiting.append(Instance.model_construct(
            entry=self.entry, element=el.id, since=self.now, due_at=due,
            seen=seen_at(el, self.state, self.now), holdout=self.holdout, held=False,
            key=self.key))


def due_after(activity: Activity, start: datetime, amount: int, unit: str) -> datetime:
    """When a wait (or a timeout) of `amount` `unit` started at `start` ends, for `activity`.

    In test mode every wait lasts the activity's `wait_minutes`. Days, weeks and months are
    counted on the activity's calendar, so "wait 1 day" ends at the same local time the next
    day even across a daylight saving change; minutes and hours are elapsed time.
    """
    if activity.test_mode is not None:
        return start + timedelta(minutes=activity.test_mode.wait_minutes)
    if unit in ("minutes", "hours"):
        return start + timedelta(**{unit: amount})
    local = after(start.astimezone(activity.zone), amount, unit)
    return local.astimezone(start.tzinfo)


def after(start: datetime, amount: int, unit: str) -> datetime:
    """`start` plus a duration; months are calendar months (31 Jan + 1 month = 28/29 Feb)."""
    if unit != "months":
        return start + timedelta(**{unit: amount})
    months = start.month - 1 + amount
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
