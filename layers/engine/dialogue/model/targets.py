"""Targets: conditions on the customer. Those who fail stop on that path.

One model per target kind, told apart by `type`; `engine.targets` has one branch per kind.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Id, ShopId, Strict, ZoneName
from .matching import Comparison, TextMatch, TimeFrame

Have = Literal["any", "all", "none"]
PROFILE_FIELD = (
    r"^(email|phone|first_name|last_name|birthday|country|city|language|attributes\.[A-Za-z0-9_]+)$"
)
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class SegmentTarget(Strict):
    type: Literal["segment"]
    match: Literal["any", "all", "none"] = "any"
    segments: list[Id] = Field(min_length=1)


class PurchaseHistoryTarget(Strict):
    """Orders or items, counted or summed, optionally only of some categories / products."""

    type: Literal["purchase_history"]
    measure: Literal["orders", "items"] = "orders"
    aggregate: Literal["count", "value"] = "count"
    compare: Comparison
    categories: list[str] = []
    products: list[ShopId] = []
    time_frame: TimeFrame = TimeFrame()
    last_orders: int | None = Field(default=None, ge=1, le=100)


class CartTarget(Strict):
    type: Literal["cart"]
    have: Have = "any"
    products: list[ShopId] = []
    categories: list[str] = []
    item_count: Comparison | None = None
    value: Comparison | None = None


class BrowsingTarget(Strict):
    """Viewed categories (optionally with sub-categories) or products."""

    type: Literal["browsing"]
    kind: Literal["category", "product"]
    ids: list[str] = Field(min_length=1)
    include_subcategories: bool = True
    have: Have = "any"
    times: int = Field(default=1, ge=1)
    time_frame: TimeFrame = TimeFrame()


class OnlineBehaviourTarget(Strict):
    """Searched terms, URL parameters of visited pages, or the referring site."""

    type: Literal["online_behaviour"]
    kind: Literal["search", "url_parameter", "referrer"]
    parameter: str | None = None
    match: TextMatch
    times: int = Field(default=1, ge=1)
    time_frame: TimeFrame = TimeFrame()

    @model_validator(mode="after")
    def _parameter(self) -> OnlineBehaviourTarget:
        if (self.kind == "url_parameter") != (self.parameter is not None):
            raise ValueError("'parameter' is required for url_parameter and only there")
        return self


class SocialTarget(Strict):
    type: Literal["social"]
    satisfies: bool = True
    kind: Literal["review", "rating", "like", "comment", "any"] = "any"
    times: int = Field(default=1, ge=1)
    time_frame: TimeFrame = TimeFrame()


class DayTimeTarget(Strict):
    """Weekdays and a time window in a zone; an end before the start wraps past midnight."""

    type: Literal["day_time"]
    weekdays: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: time = time(0, 0)
    end: time = time(23, 59, 59)
    time_zone: ZoneName = "UTC"


class AttributeTarget(Strict):
    """Any profile field (country, city, language) or custom field (`attributes.<name>`)."""

    type: Literal["attribute"]
    field: str = Field(pattern=PROFILE_FIELD)
    op: Literal["equals", "not_equals", "contains", "exists", "not_exists", "in", "greater", "less"]
    value: bool | int | float | str | list[str] | None = None

    @model_validator(mode="after")
    def _value(self) -> AttributeTarget:
        if self.op in ("exists", "not_exists"):
            if self.value is not None:
                raise ValueError(f"'{self.op}' takes no value")
        elif self.op == "in":
            if not isinstance(self.value, list):
                raise ValueError("'in' needs a list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a single value")
        return self


Target = Annotated[
    SegmentTarget | PurchaseHistoryTarget | CartTarget | BrowsingTarget | OnlineBehaviourTarget
    | SocialTarget | DayTimeTarget | AttributeTarget,
    Field(discriminator="type"),
]
