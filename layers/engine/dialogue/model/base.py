"""Shared pydantic base classes: strict where a marketer or a shop types the data."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Ids a marketer writes (activities, elements, segments): short, no spaces, safe in keys and paths.
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")]
# Ids the shop owns (customers, orders, products): any printable text.
ShopId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]



def _known_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {v!r}") from None
    return v


# An IANA time zone name ("Europe/Paris"), checked where it is written, not when first used.
ZoneName = Annotated[str, AfterValidator(_known_zone)]


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(BaseModel):
    """Mutable state the engine owns (customer state); still no unknown keys."""

    model_config = ConfigDict(extra="forbid")
