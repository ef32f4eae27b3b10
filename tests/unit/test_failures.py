"""Failures seen and kept apart: an event's failure held then dead-lettered with its reason, one
customer's failing daily check leaving the rest of the scan page checked and retried later."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue.engine.catalog import Catalog
from dialogue.failures import EventRecords, failure_kind, opaque
from dialogue.local.simulate import SimulatedClock
from dialogue.model.customer import CustomerState, Membership
from dialogue.ports import Conflict
from dialogue.services import DailyWorker

NOW = datetime(2026, 6, 15, 2, tzinfo=UTC)
BODY = json.dumps({"id": "env-1", "detail": {"event_id": "order-3"}})


class Letters:
    def __init__(self) -> None:
        self.kept: list[tuple[str, str | None, list[str], str, str | None]] = []

    def reject(self, body: str, event_id: str | None, reasons: list[str],
               kind: str = "rejected", group: str | None = None) -> None:
        self.kept.append((body, event_id, reasons, kind, group))


def broken(body: str) -> str:
    raise KeyError("price")


def records(letters: Letters, counted: list[tuple[str, int]],
            logged: list[tuple[str, dict[str, Any]]]) -> EventRecords:
    return EventRecords(handle=broken, dead_letters=letters,
                        count=lambda name, n: counted.append((name, n)),
                        log_error=lambda msg, *args, **kw: logged.append((msg % args, kw)))


def test_a_failing_event_is_held_in_order_then_dead_lettered_alone_with_its_reason() -> None:
    letters, counted, logged = Letters(), [], []
    events = records(letters, counted, logged)  # type: ignore[arg-type]
    for receive in range(1, 5):
        with pytest.raises(KeyError):  # the record fails: the customer's group waits
            events.process(BODY, "m-1", receive, "customer:frank")
    assert letters.kept == []

    assert events.process(BODY, "m-1", 5, "customer:frank") == "dead_lettered"

    assert letters.kept == [(BODY, "env-1", ["KeyError: 'price'"], "poisoned", "customer:frank")]
    assert counted.count(("EventsFailed_poisoned", 1)) == 5
    assert ("EventsDeadLettered", 1) in counted
    message, kw = logged[-1]
    assert "env-1" in message and "KeyError" in message and "dead-lettered" in message
    assert isinstance(kw["exc_info"], KeyError) and kw["extra"]["shop_event_id"] == "order-3"


def test_failures_are_counted_by_kind() -> None:
    assert failure_kind(Conflict("x")) == "transient"
    assert failure_kind(TimeoutError()) == "transient"
    assert failure_kind(RecursionError()) == "poisoned"


class Scan:
    def __init__(self, states: list[CustomerState]):
        self.states = states

    def page(self, segment: int, total: int, cursor: Any, limit: int = 500) -> Any:
        return self.states, None, 1.0


class Store:
    """Customers' states; one of them cannot be written."""

    def __init__(self, bad: str):
        self.bad, self.written = bad, []

    def load(self, subject: str) -> CustomerState:
        ended = Membership(since=NOW - timedelta(days=9), until=NOW - timedelta(days=1))
        return CustomerState(subject=subject, segments={"vip": ended})

    def commit(self, state: CustomerState, effects: Any, before: Any = None) -> None:
        if state.subject == self.bad:
            raise ValueError("the item is too large")
        self.written.append(state.subject)


class Rfm:
    def merged(self) -> dict[str, int]:
        return {}

    def snapshot(self, day: str) -> dict[str, int] | None:
        return None


class Catalogs:
    def catalog(self, max_age: float | None = None) -> Catalog:
        return Catalog()


def test_one_customer_failing_the_daily_check_leaves_the_others_checked_and_is_retried(
        caplog: pytest.LogCaptureFixture) -> None:
    # Each has a membership that ended: today's check has something to write for everyone.
    ended = {"vip": Membership(since=NOW - timedelta(days=9), until=NOW - timedelta(days=1))}
    states = [CustomerState(subject=f"customer:c{n:02d}", segments=ended) for n in range(60)]
    store, sent, counted = Store(bad="customer:c25"), [], []

    class Work:
        def send(self, items: list[dict[str, Any]], delay: int = 0) -> None:
            sent.extend({**item, "delay": delay} for item in items)

    worker = DailyWorker(store=store, scan=Scan(states), work=Work(), rfm=Rfm(),  # type: ignore[arg-type]
                         catalogs=Catalogs(), clock=SimulatedClock(NOW),
                         zone=ZoneInfo("Europe/Paris"),
                         count=lambda name, n: counted.append((name, n)),
                         log_error=logging.getLogger("dialogue").error)
    with caplog.at_level(logging.ERROR, logger="dialogue"):
        answer = worker.handle({"day": "2026-06-15", "segment": 0, "total": 1}, lambda: 900.0)

    assert len(store.written) == 59 and "customer:c25" not in store.written
    assert answer["failed"] == 1 and answer["checked"] == 60
    assert ("DailyCustomersFailed_poisoned", 1) in counted
    [retry] = sent
    assert retry["retry"] == ["customer:c25"] and retry["attempt"] == 1 and retry["delay"] > 0
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert opaque("customer:c25") in line.getMessage() and "c25" not in line.getMessage()
    assert "too large" in line.getMessage() and line.exc_info

    store.bad = ""  # the next try succeeds
    again = worker.handle({k: v for k, v in retry.items() if k != "delay"}, lambda: 900.0)
    assert again["failed"] == 0 and store.written[-1] == "customer:c25"
