"""Small builders for the unit tests: events as EventBridge delivers them, activities, a clock.

No AWS here: the unit tests exercise the pure model and engine only.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from dialogue.model.activity import Activity
from dialogue.model.events import ShopEvent, parse_event

# A fixed "now": a Sunday afternoon in summer (Europe/Paris is UTC+2).
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

_event_numbers = itertools.count(1)


def _jsonable(value: Any) -> Any:
    """What a shop would put on the wire: ISO dates, numbers, plain containers."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def envelope(detail_type: str, **detail: Any) -> dict[str, Any]:
    """An EventBridge event as a dict. The detail gets an event id, customer `c1` and NOW,
    unless given (pass `customer_id=None` to leave the customer out)."""
    n = next(_event_numbers)
    detail.setdefault("event_id", f"evt-{n}")
    detail.setdefault("customer_id", "c1")
    detail.setdefault("occurred_at", NOW)
    detail = {k: v for k, v in detail.items() if v is not None}
    return {
        "version": "0",
        "id": f"eb-{n}",
        "source": "shop.test",
        "account": "123456789012",
        "region": "eu-west-1",
        "resources": [],
        "detail-type": detail_type,
        "time": _jsonable(detail.get("occurred_at", NOW)),
        "detail": _jsonable(detail),
    }


def event(detail_type: str, **detail: Any) -> ShopEvent:
    """`envelope(...)` parsed the way `on_event` parses it."""
    return parse_event(envelope(detail_type, **detail))


def activity(*elements: dict[str, Any], **props: Any) -> Activity:
    """An active, non-repeatable activity `act` in UTC made of `elements` (explicit `next`s)."""
    doc: dict[str, Any] = {"id": "act", "name": "Test activity", **props}
    doc["elements"] = list(elements)
    return Activity.model_validate(doc)
