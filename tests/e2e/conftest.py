"""One embedded AWS (moto server + the template's stack) per test session, emptied per test."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dialogue import bootstrap
from dialogue.local.demo import SimulatedClock
from dialogue.local.runtime import LocalAws

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
# An order, and the thank-you dialogue it starts (a coupon, then an e-mail at once).
ORDER = {"order_id": "o-1", "total": "40",
         "lines": [{"product_id": "p1", "unit_price": "40", "categories": ["Ski"]}]}
THANKS_BY_MAIL = {
    "id": "thanks", "name": "Thanks for your order", "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "THANK-YOU-5", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "order-coupon",
         "reply_to": "service@shop.example", "send_immediately": True}]}


@pytest.fixture(scope="package")
def local_aws() -> Iterator[LocalAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws = LocalAws().start()
    yield aws
    aws.stop()


class Shop:
    """A shop publishing events to EventBridge with boto3, and the effects read back."""

    def __init__(self, aws: LocalAws):
        self.aws = aws
        self.events = aws.client("events")

    def load(self, activities: list[Path | dict[str, Any]], segments: list[Path] | None = None,
             tmp: Path | None = None) -> None:
        paths = []
        for i, a in enumerate(activities):
            if isinstance(a, dict):
                assert tmp is not None
                path = tmp / f"inline-{i}.json"
                path.write_text(json.dumps(a))
                a = path
            paths.append(a)
        if segments is None:
            segments = sorted((EXAMPLES / "segments").glob("*.json"))
        self.aws.upload_catalog(paths, segments)

    def publish(self, detail_type: str, customer: str | None, at: datetime = NOW,
                personalization: str | None = None, **detail: Any) -> dict[str, Any]:
        """put_events to the stack's bus; returns the EventBridge entry as published."""
        body = {"event_id": detail.pop("event_id", str(uuid.uuid4())),
                "occurred_at": at.isoformat(), **detail}
        if customer:
            body["customer_id"] = customer
        if personalization:
            body["personalization_id"] = personalization
        entry = {"Source": "shop", "DetailType": detail_type, "Detail": json.dumps(body),
                 "EventBusName": self.aws.s.name("EventBus"), "Time": at}
        result = self.events.put_events(Entries=[entry])
        assert result["FailedEntryCount"] == 0, result
        return body

    def deliver(self) -> int:
        with contextlib.redirect_stdout(io.StringIO()):  # the functions' JSON logs and metrics
            return self.aws.drain()


@pytest.fixture
def shop(local_aws: LocalAws) -> Iterator[Shop]:
    local_aws.reset()
    bootstrap.use_clock(SimulatedClock(NOW))
    yield Shop(local_aws)
    bootstrap.use_clock(bootstrap.SystemClock())


def example(name: str) -> Path:
    path = EXAMPLES / "activities" / name
    assert path.is_file(), f"missing example {name}"
    return path


@pytest.fixture
def world(local_aws: LocalAws, tmp_path: Path) -> Iterator[Any]:
    """A fresh stack, a catalog and a simulated clock (`test_time.World`), for the time,
    controls and identity scenarios."""
    from tests.e2e.test_time import World  # it imports this module

    local_aws.reset()
    yield World(local_aws, tmp_path)
    bootstrap.use_clock(bootstrap.SystemClock())
    local_aws.waits.clock = None
