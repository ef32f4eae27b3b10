"""The shop's events, as EventBridge delivers them (envelope + typed detail).

Each detail model names its `detail-type`; `parse_event` picks the model from the envelope, so an
unknown detail-type is told apart from a malformed event of a known type.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .base import ShopId, Strict

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]


DETAIL_TYPES = frozenset({
    "CustomerRegistered", "CustomerLoggedIn", "CustomerLoggedOut", "CustomerUpdated", "OrderPlaced",
    "CartUpdated", "ProductViewed", "CategoryViewed", "SearchPerformed", "PageVisited",
    "SocialParticipation", "CustomEvent",
})


class UnknownEventType(ValueError):
    """A detail-type this engine does not know: counted and ignored, not an error."""


class Consent(Strict):
    """Consent per channel; None = not stated by this event (keep what we know)."""

    email: bool | None = None
    sms: bool | None = None
    tracking: bool | None = None


class Profile(Strict):
    """Profile fields a shop may send; `attributes` carries the shop's custom fields."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birthday: date | None = None
    country: str | None = None
    city: str | None = None
    language: str | None = None
    attributes: dict[str, str | int | float | bool] = {}


class Detail(Strict):
    """Fields every shop event carries: who, when, and an id for exactly-once processing."""

    DETAIL_TYPE: ClassVar[str] = ""
    # Behaviour events are recorded only with tracking consent; profile/order events always.
    BEHAVIOUR: ClassVar[bool] = False

    event_id: ShopId
    customer_id: ShopId | None = None
    personalization_id: ShopId | None = None
    occurred_at: AwareDatetime

    @model_validator(mode="after")
    def _someone(self) -> Detail:
        if not (self.customer_id or self.personalization_id):
            raise ValueError("customer_id or personalization_id is required")
        return self

    @property
    def subject(self) -> str:
        """The state key: a known customer, else the guest's browser."""
        if self.customer_id:
            return f"customer:{self.customer_id}"
        return f"guest:{self.personalization_id}"


class CustomerRegistered(Detail):
    DETAIL_TYPE: ClassVar[str] = "CustomerRegistered"
    profile: Profile = Profile()
    consent: Consent = Consent()


class CustomerLoggedIn(Detail):
    DETAIL_TYPE: ClassVar[str] = "CustomerLoggedIn"


class CustomerLoggedOut(Detail):
    DETAIL_TYPE: ClassVar[str] = "CustomerLoggedOut"


class CustomerUpdated(Detail):
    """Profile, birthday or consent changed; only the fields present are changed."""

    DETAIL_TYPE: ClassVar[str] = "CustomerUpdated"
    profile: Profile = Profile()
    consent: Consent = Consent()


class OrderLine(Strict):
    product_id: ShopId
    name: str | None = None
    categories: list[str] = []
    manufacturer: str | None = None
    quantity: int = Field(default=1, ge=1)
    unit_price: Money
    discount: Money = Decimal(0)


class OrderPlaced(Detail):
    DETAIL_TYPE: ClassVar[str] = "OrderPlaced"
    order_id: ShopId
    lines: list[OrderLine] = Field(min_length=1)
    promotion_codes: list[str] = []
    total: Money
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")


class CartLine(Strict):
    product_id: ShopId
    categories: list[str] = []
    quantity: int = Field(default=1, ge=1)
    unit_price: Money


class CartUpdated(Detail):
    """The whole cart as it now is (an empty list empties it)."""

    DETAIL_TYPE: ClassVar[str] = "CartUpdated"
    cart_id: ShopId
    lines: list[CartLine] = []


class ProductViewed(Detail):
    DETAIL_TYPE: ClassVar[str] = "ProductViewed"
    BEHAVIOUR: ClassVar[bool] = True
    product_id: ShopId
    categories: list[str] = []
    manufacturer: str | None = None


class CategoryViewed(Detail):
    DETAIL_TYPE: ClassVar[str] = "CategoryViewed"
    BEHAVIOUR: ClassVar[bool] = True
    category: str
    # Ancestors, nearest first: lets "viewed category X with sub-categories" match a child.
    parent_categories: list[str] = []


class SearchPerformed(Detail):
    DETAIL_TYPE: ClassVar[str] = "SearchPerformed"
    BEHAVIOUR: ClassVar[bool] = True
    query: str = Field(min_length=1, max_length=512)


class PageVisited(Detail):
    DETAIL_TYPE: ClassVar[str] = "PageVisited"
    BEHAVIOUR: ClassVar[bool] = True
    url: str
    url_parameters: dict[str, str] = {}
    referrer: str | None = None


class SocialParticipation(Detail):
    DETAIL_TYPE: ClassVar[str] = "SocialParticipation"
    BEHAVIOUR: ClassVar[bool] = True
    kind: Literal["review", "rating", "like", "comment"]
    product_id: ShopId | None = None


class CustomEvent(Detail):
    """Anything the shop names itself, for the *wait for event* trigger (wish list, link click…)."""

    DETAIL_TYPE: ClassVar[str] = "CustomEvent"
    BEHAVIOUR: ClassVar[bool] = True
    name: str = Field(min_length=1, max_length=128)
    parameters: dict[str, str] = {}

    @field_validator("name")
    @classmethod
    def _not_a_shop_event(cls, v: str) -> str:
        if v in DETAIL_TYPES:
            raise ValueError(f"{v!r} is a shop event type: publish it as its own detail-type")
        return v


DETAILS: dict[str, type[Detail]] = {
    cls.DETAIL_TYPE: cls
    for cls in (
        CustomerRegistered, CustomerLoggedIn, CustomerLoggedOut, CustomerUpdated, OrderPlaced,
        CartUpdated, ProductViewed, CategoryViewed, SearchPerformed, PageVisited,
        SocialParticipation, CustomEvent,
    )
}
assert set(DETAILS) == DETAIL_TYPES


class ShopEvent(Strict):
    """The EventBridge envelope around one detail; one subclass per detail-type (EVENTS)."""

    version: str = "0"
    id: str
    source: str
    account: str | None = None
    region: str | None = None
    resources: list[str] = []
    detail_type: str = Field(alias="detail-type")
    time: AwareDatetime
    detail: Detail

    @property
    def subject(self) -> str:
        return self.detail.subject


EVENTS: dict[str, type[ShopEvent]] = {
    name: create_model(f"{name}Event", __base__=ShopEvent, detail=(model, ...))
    for name, model in DETAILS.items()
}


def parse_event(raw: Any) -> ShopEvent:
    """Validate an EventBridge event; raises UnknownEventType or pydantic's ValidationError."""
    detail_type = raw.get("detail-type") if isinstance(raw, dict) else None
    model = EVENTS.get(detail_type) if isinstance(detail_type, str) else None
    if model is None:
        raise UnknownEventType(f"unknown detail-type {detail_type!r}")
    return model.model_validate(raw)


def event_errors(exc: ValidationError) -> list[str]:
    """`$.detail.lines[0].unit_price: Input should be ...` — one line per problem."""
    return [f"{json_path(err['loc'])}: {err['msg']}" for err in exc.errors()]


def json_path(loc: tuple[Any, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
