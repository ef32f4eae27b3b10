"""Shared pydantic base classes: strict where a marketer or a shop types the data."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Ids a marketer writes (activities, elements, segments): short, no spaces, safe in keys and paths.
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")]
# Ids the shop owns (customers, orders, products): any printable text.
ShopId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(BaseModel):
    """Mutable state the engine owns (customer state); still no unknown keys."""

    model_config = ConfigDict(extra="forbid")
