"""Journey controls' settings that stand on their own (docs/activities.md, "Journey controls"):
quiet hours and blackout days, frequency caps, the holdout, the rate limit. `Activity` carries
them; the engine (`engine.caps`, `engine.controls`) and delivery (`delivery.quiet`,
`delivery.rate`) apply them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from .base import Day, Strict

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class Blackout(Strict):
    """A named list of days without marketing sends (whole days, the customer's time zone)."""

    name: str = Field(min_length=1, max_length=100)
    dates: list[Day] = Field(min_length=1, max_length=60)


class QuietHours(Strict):
    """No message of the activity goes out from `start` to `end` (wall-clock "HH:MM" in the
    customer's time zone, else the shop's; across midnight when `end` is earlier), nor on a
    blackout day: it is held until the window opens (`then: hold`) or not sent (`skip`)."""

    start: str | None = Field(default=None, pattern=HHMM)
    end: str | None = Field(default=None, pattern=HHMM)
    then: Literal["hold", "skip"] = "hold"
    blackout: Blackout | None = None

    @model_validator(mode="after")
    def _window(self) -> QuietHours:
        if (self.start is None) != (self.end is None):
            raise ValueError("quiet hours take both 'start' and 'end'")
        if self.start is not None and self.start == self.end:
            raise ValueError("'start' and 'end' are the same time: no window would open")
        if self.start is None and self.blackout is None:
            raise ValueError("quiet hours need 'start' and 'end', or a 'blackout'")
        return self


CAP_DAYS = 31  # the longest cap window: the customer's send log keeps that long


class CapWindow(Strict):
    """A cap's sliding window: `amount` `unit`, at most CAP_DAYS days."""

    unit: Literal["minutes", "hours", "days", "weeks"]
    amount: int = Field(ge=1, le=CAP_DAYS * 24 * 60)


class CapLimit(Strict):
    """At most `messages` within any `per` (sliding), of one `channel` or of all (none)."""

    messages: int = Field(ge=1, le=100)
    per: CapWindow
    channel: Literal["email", "sms"] | None = None

    @model_validator(mode="after")
    def _within_the_log(self) -> CapLimit:
        if self.window > timedelta(days=CAP_DAYS):
            raise ValueError(f"a cap's window is at most {CAP_DAYS} days")
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(**{self.per.unit: self.per.amount})

    @property
    def label(self) -> str:
        return (f"{self.messages} per {self.per.amount} {self.per.unit}"
                + (f" ({self.channel})" if self.channel else ""))


class FrequencyCap(Strict):
    """Caps across activities: the messages of every activity not `cap_exempt` count. A capped
    message is held until the cap allows it, or skipped; the customer goes on either way."""

    limits: list[CapLimit] = Field(min_length=1, max_length=5)
    then: Literal["hold", "skip"] = "skip"


class RateLimit(Strict):
    """At most `messages` per `per` for this activity's messages, spread over the release
    function's runs rather than dropped (`delivery.rate`)."""

    messages: int = Field(ge=1, le=1_000_000)
    per: Literal["second", "minute", "hour", "day"]

    @property
    def seconds(self) -> int:
        return {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[self.per]

    @property
    def label(self) -> str:
        return f"{self.messages} per {self.per}"


class Holdout(Strict):
    """A control group: `percent` of entering customers, chosen from the customer and the
    activity (the same customer always falls on the same side), go through no actions."""

    percent: Decimal = Field(gt=0, lt=100)
