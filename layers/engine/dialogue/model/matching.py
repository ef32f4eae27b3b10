"""Small vocabulary shared by triggers and targets: text rules, time frames, comparisons."""

from __future__ import annotations

import datetime as dt
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator

from .base import Day, Strict


class TextRule(StrEnum):
    EXACT = "exact"
    STARTS = "starts"
    CONTAINS = "contains"
    ENDS = "ends"
    ANY = "any"


class TextMatch(Strict):
    """A keyword rule, case-insensitive ("starts with 'rossi'")."""

    rule: TextRule = TextRule.EXACT
    value: str = ""

    @model_validator(mode="after")
    def _value_needed(self) -> TextMatch:
        if self.rule is not TextRule.ANY and not self.value:
            raise ValueError(f"rule {self.rule.value!r} needs a non-empty value")
        return self

    @cached_property
    def _folded(self) -> str:
        return self.value.casefold().strip()

    def matches(self, text: str | None) -> bool:
        if self.rule is TextRule.ANY:
            return text is not None
        if text is None:
            return False
        t, v = text.casefold().strip(), self._folded
        match self.rule:
            case TextRule.EXACT:
                return t == v
            case TextRule.STARTS:
                return t.startswith(v)
            case TextRule.CONTAINS:
                return v in t
            case TextRule.ENDS:
                return t.endswith(v)
        return False  # pragma: no cover - exhaustive above


class TimeFrame(Strict):
    """When counted occurrences must have happened. `since_activity_start` uses the start date."""

    kind: Literal[
        "any_time", "last_days", "before", "after", "on", "between", "since_activity_start"
    ] = "any_time"
    days: int | None = Field(default=None, ge=1, le=3650)
    day: Day | None = None
    start: Day | None = None
    end: Day | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> TimeFrame:
        needs = {
            "last_days": ("days",), "before": ("day",), "after": ("day",), "on": ("day",),
            "between": ("start", "end"),
        }.get(self.kind, ())
        missing = [f for f in needs if getattr(self, f) is None]
        if missing:
            raise ValueError(f"time frame {self.kind!r} needs {', '.join(missing)}")
        if self.kind == "between" and self.start and self.end and self.start > self.end:
            raise ValueError("time frame 'between': start is after end")
        return self

    def contains(self, at: datetime, now: datetime, zone: dt.tzinfo,
                 activity_start: dt.date | None = None) -> bool:
        """Is `at` inside the frame, judged at `now`? Dates are whole days in `zone`."""
        day = at.astimezone(zone).date()
        match self.kind:
            case "any_time":
                return True
            case "last_days":
                assert self.days is not None
                return now - timedelta(days=self.days) <= at <= now
            case "before":
                return day < self.day  # type: ignore[operator]
            case "after":
                return day > self.day  # type: ignore[operator]
            case "on":
                return day == self.day
            case "between":
                return self.start <= day <= self.end  # type: ignore[operator]
            case "since_activity_start":
                return activity_start is None or day >= activity_start
        return False  # pragma: no cover


class Comparison(Strict):
    """`at_least 2`, `greater_than 1000`, `exactly 1`, `less_than 3`, `between 100 and 500`."""

    op: Literal["at_least", "greater_than", "exactly", "less_than", "between"] = "at_least"
    value: Decimal = Field(ge=0)
    max: Decimal | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _between_needs_max(self) -> Comparison:
        if self.op == "between" and (self.max is None or self.max < self.value):
            raise ValueError("'between' needs max >= value")
        return self

    def holds(self, x: Decimal | int) -> bool:
        match self.op:
            case "at_least":
                return x >= self.value
            case "greater_than":
                return x > self.value
            case "exactly":
                return x == self.value
            case "less_than":
                return x < self.value
            case "between":
                return self.value <= x <= self.max  # type: ignore[operator]
        return False  # pragma: no cover
