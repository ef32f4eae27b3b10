"""Rule-based segments evaluated for one customer (the Segments issue fills this in).

`refresh` is called by the daily check (engine.daily) before the daily triggers, so that
*customer is in segment* sees today's membership.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialogue.engine.catalog import Catalog
from dialogue.model.customer import CustomerState
from dialogue.model.effects import AnyEffect


@dataclass(frozen=True)
class RfmBoundaries:
    """Quintile boundaries of recency, frequency and monetary value over the customer base."""


def refresh(state: CustomerState, catalog: Catalog, now: datetime,
            rfm: RfmBoundaries | None = None) -> list[AnyEffect]:
    """Join or leave every rule-based segment of `catalog` as the rules now say (mutates `state`)."""
    return []
