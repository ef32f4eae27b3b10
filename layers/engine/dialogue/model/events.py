"""The shop's events, as EventBridge delivers them (envelope + typed detail).

Each detail model names its `detail-type`; `parse_event` picks the model from the envelope, so an
unknown detail-type is told apart from a malformed event of a known type.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .base import ShopId, Strict, ZoneName

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]

# A customer or browser id becomes a key and an SQS FIFO message group id (with a 2-character
# prefix), whose documented alphabet is ASCII letters, digits and punctuation, 128 at most
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html,
# MessageGroupId): the contract takes that alphabet, 100 at most, and says so when it refuses.
MAX_PERSON_ID = 100
_GROUP_ID = re.compile(rf"[!-~]{{1,{MAX_PERSON_ID}}}")


def _group_id_safe(v: str) -> str:
    if not _GROUP_ID.fullmatch(v):
        raise ValueError(f"must be 1 to {MAX_PERSON_ID} ASCII letters, digits or punctuation, "
                         "without spaces (it becomes an SQS message group id)")
    return v


PersonId = Annotated[str, AfterValidator(_group_id_safe), Field(
    json_schema_extra={"pattern": rf"^[!-~]{{1,{MAX_PERSON_ID}}}$"})]

# Every text the state keeps is bounded here, so that a customer's state is (docs/events.md,
# "Bounds"): longer or more is refused with the field's JSON path.
Text = Annotated[str, Field(max_length=256)]
Label = Annotated[str, Field(min_length=1, max_length=128)]  # a category, a parameter's name
Labels = Annotated[list[Label], Field(max_length=20)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
# (A value as long as the clicked links `delivery.tracking` keeps, MAX_LINK.)
Parameters = Annotated[dict[Label, Annotated[str, Field(max_length=1024)]], Field(max_length=20)]
MAX_LINES = 100
MAX_LINES_JSON = 16_384  # an order's or a cart's lines, as the state keeps them
MAX_BEHAVIOUR_EVENT_JSON = 8_192  # a behaviour event's own fields, as the history keeps them
MAX_ATTRIBUTES = 50  # custom profile fields, in an event and in a state (oldest set dropped)
MAX_ATTRIBUTE_TEXT = 100
AttributeName = Annotated[str, Field(min_length=1, max_length=64)]

# Date arithmetic (waits, time frames, Unix seconds) must never overflow: an event is dated
# between these (a year 1 or 9999 date with an extreme offset cannot even be put in UTC).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible(at: datetime) -> datetime:
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("must be between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z")
    return at


EventTime = Annotated[AwareDatetime, AfterValidator(_plausible)]


DETAIL_TYPES = frozenset({
    "CustomerRegistered", "CustomerLoggedIn", "CustomerLoggedOut", "CustomerUpdated", "OrderPlaced",
    "CartUpdated", "ProductViewed", "CategoryViewed", "SearchPerformed", "PageVisited",
    "SocialParticipation", "CustomEvent", "CustomerDeleted",
})


class UnknownEventType(ValueError):
    """A detail-type this engine does not know: counted and ignored, not an error."""


def _short_text(v: str | bool | int | float) -> str | bool | int | float:
    if isinstance(v, str) and len(v) > MAX_ATTRIBUTE_TEXT:
        raise ValueError(f"a text attribute has at most {MAX_ATTRIBUTE_TEXT} characters, "
                         f"not {len(v)}")
    if isinstance(v, int) and not -(2**63) <= v < 2**63:
        raise ValueError("a whole-number attribute must fit in 64 bits")
    return v


AttributeValue = Annotated[str | StrictBool | int | float, AfterValidator(_short_text)]


class Consent(Strict):
    """Consent per channel; None = not stated by this event (keep what we know)."""

    email: StrictBool | None = None  # `true` or `false`: "yes" or 1 is refused, not guessed
    sms: StrictBool | None = None
    tracking: StrictBool | None = None


class Profile(Strict):
    """Profile fields a shop may send; `attributes` carries the shop's custom fields."""

    email: Annotated[str, Field(max_length=254)] | None = None  # RFC 5321's longest path
    phone: Annotated[str, Field(max_length=32)] | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    birthday: date | None = None
    country: Annotated[str, Field(max_length=64)] | None = None
    city: Text | None = None
    language: Annotated[str, Field(max_length=35)] | None = None  # BCP 47's longest common tag
    # The customer's IANA time zone: quiet hours are theirs (else the shop's TimeZone).
    time_zone: ZoneName | None = None
    attributes: Annotated[dict[AttributeName, AttributeValue],
                          Field(max_length=MAX_ATTRIBUTES)] = {}


class Detail(Strict):
    """Fields every shop event carries: who, when, and an id for exactly-once processing."""

    DETAIL_TYPE: ClassVar[str] = ""
    # Behaviour events are recorded only with tracking consent; profile/order events always.
    BEHAVIOUR: ClassVar[bool] = False

    event_id: ShopId
    customer_id: PersonId | None = None
    personalization_id: PersonId | None = None
    occurred_at: EventTime

    @model_validator(mode="after")
    def _someone(self) -> Detail:
        if not (self.customer_id or self.personalization_id):
            raise ValueError("customer_id or personalization_id is required")
        return self

    @model_validator(mode="after")
    def _fits_history(self) -> Detail:
        """What a behaviour event adds to the history is bounded in bytes (UTF-8 JSON), not
        only in characters per field: the history's byte budget then holds several."""
        if self.BEHAVIOUR:
            size = len(self.model_dump_json(exclude=_COMMON).encode())
            if size > MAX_BEHAVIOUR_EVENT_JSON:
                raise ValueError(f"the event's own fields take {size} bytes as JSON, at most "
                                 f"{MAX_BEHAVIOUR_EVENT_JSON}: shorter URLs or fewer parameters")
        return self

    @property
    def subject(self) -> str:
        """The state key: a known customer, else the guest's browser."""
        if self.customer_id:
            return f"customer:{self.customer_id}"
        return f"guest:{self.personalization_id}"


_COMMON = set(Detail.model_fields)


class CustomerRegistered(Detail):
    DETAIL_TYPE: ClassVar[str] = "CustomerRegistered"
    profile: Profile = Profile()
    consent: Consent = Consent()


class CustomerLoggedIn(Detail):
    DETAIL_TYPE: ClassVar[str] = "CustomerLoggedIn"


class CustomerLoggedOut(Detail):
    DETAIL_TYPE: ClassVar[str] = "CustomerLoggedOut"


class CustomerDeleted(Detail):
    """The customer asked to be forgotten: everything held about them is removed
    (docs/identity.md, "Deletion"); events dated up to now for that id are refused."""

    DETAIL_TYPE: ClassVar[str] = "CustomerDeleted"


class CustomerUpdated(Detail):
    """Profile, birthday or consent changed; only the fields present are changed."""

    DETAIL_TYPE: ClassVar[str] = "CustomerUpdated"
    profile: Profile = Profile()
    consent: Consent = Consent()


def _lines_fit(lines: list[Any]) -> list[Any]:
    """The lines as the state keeps them (names left out) are bounded: a cart and an order are
    kept whole or refused, never cut."""
    size = sum(len(ln.model_dump_json(exclude={"name"}).encode()) + 1 for ln in lines)
    if size > MAX_LINES_JSON:
        raise ValueError(f"the lines take {size} bytes as JSON (names left out), at most "
                         f"{MAX_LINES_JSON}: fewer lines or shorter categories")
    return lines


class OrderLine(Strict):
    product_id: ShopId
    name: Text | None = None
    categories: Labels = []
    manufacturer: Label | None = None
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    unit_price: Money
    discount: Money = Decimal(0)


class OrderPlaced(Detail):
    DETAIL_TYPE: ClassVar[str] = "OrderPlaced"
    order_id: ShopId
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES),
                     AfterValidator(_lines_fit)]
    promotion_codes: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                               Field(max_length=10)] = []
    total: Money
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")


class CartLine(Strict):
    product_id: ShopId
    categories: Labels = []
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    unit_price: Money


class CartUpdated(Detail):
    """The whole cart as it now is (an empty list empties it)."""

    DETAIL_TYPE: ClassVar[str] = "CartUpdated"
    cart_id: ShopId
    lines: Annotated[list[CartLine], Field(max_length=MAX_LINES),
                     AfterValidator(_lines_fit)] = []


class ProductViewed(Detail):
    DETAIL_TYPE: ClassVar[str] = "ProductViewed"
    BEHAVIOUR: ClassVar[bool] = True
    product_id: ShopId
    categories: Labels = []
    manufacturer: Label | None = None


class CategoryViewed(Detail):
    DETAIL_TYPE: ClassVar[str] = "CategoryViewed"
    BEHAVIOUR: ClassVar[bool] = True
    category: Label
    # Ancestors, nearest first: lets "viewed category X with sub-categories" match a child.
    parent_categories: Labels = []


class SearchPerformed(Detail):
    DETAIL_TYPE: ClassVar[str] = "SearchPerformed"
    BEHAVIOUR: ClassVar[bool] = True
    query: str = Field(min_length=1, max_length=512)


class PageVisited(Detail):
    DETAIL_TYPE: ClassVar[str] = "PageVisited"
    BEHAVIOUR: ClassVar[bool] = True
    url: Url
    url_parameters: Parameters = {}
    referrer: Url | None = None


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
    parameters: Parameters = {}

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
        SocialParticipation, CustomEvent, CustomerDeleted,
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
    time: EventTime
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
