"""What the service layer needs from the outside world; adapters in `aws/` and fakes in tests."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from dialogue.engine.catalog import Catalog
from dialogue.model.customer import CustomerState
from dialogue.model.effects import AnyEffect


class Conflict(Exception):
    """Somebody else wrote this customer's state since we read it: read again and decide again."""


class CustomerStore(Protocol):
    def load(self, subject: str) -> CustomerState:
        """The state, or a fresh one at version 0."""
        ...

    def commit(self, state: CustomerState, effects: list[AnyEffect],
               before: CustomerState | None = None,
               also: tuple[CustomerState, CustomerState] | None = None) -> None:
        """Write state (expected at `state.version`) and effects atomically, or raise Conflict;
        `before` (the state as read) lets the store keep aggregates such as RFM histograms;
        `also` (new, as read): a second state written in the same transaction."""
        ...


class CustomerRows(Protocol):
    """What names a customer outside their state: their browsers' guest states and the rows
    (message jobs, timers, coupons, segment members) keyed in other partitions. An erasure
    removes them (`aws.erase.DynamoCustomerRows`); each call may be repeated (a retry)."""

    def erase_guest(self, subject: str, customer_id: str) -> bool:
        """Delete the guest state if it is linked to `customer_id` (or to nobody)."""
        ...

    def erase_rows(self, subjects: list[str]) -> dict[str, int]:
        """Delete every row naming one of `subjects`; how many, by kind."""
        ...


class CatalogSource(Protocol):
    def catalog(self, max_age: float | None = None) -> Catalog: ...


class ActivityFiles(CatalogSource, Protocol):
    def deactivate(self, activity_id: str) -> bool:
        """Mark the activity's file inactive; False if it changed meanwhile or is not active."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class RejectedEvents(Protocol):
    def reject(self, body: str, event_id: str | None, reasons: list[str]) -> None:
        """Keep an event that can never be processed, with why (a dead-letter queue)."""
        ...
