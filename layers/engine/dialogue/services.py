"""Use cases: a shop event (`EventService`), a wait's end (`WakeService`), the daily check
(`DailyCheck` fans out, `DailyWorker` checks a scan segment). Each loads a customer's state,
asks the pure core for a decision and commits it once, conditionally on the version it read.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from dialogue import identity
from dialogue.engine import segments as segment_rules
from dialogue.engine.catalog import Catalog
from dialogue.engine.daily import daily_runs, expired
from dialogue.engine.decide import Decision, writable
from dialogue.engine.identity import hold
from dialogue.engine.rfm import RfmBoundaries, boundaries
from dialogue.engine.schedule import missed_days, run_instant
from dialogue.engine.timers import TimerRef
from dialogue.engine.wake import wake
from dialogue.failures import failure_kind, opaque, reason_of
from dialogue.model.customer import CustomerState
from dialogue.model.events import UnknownEventType, event_errors, parse_event
from dialogue.ports import (
    ActivityFiles,
    CatalogSource,
    Clock,
    Conflict,
    CustomerRows,
    CustomerStore,
    RejectedEvents,
)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN_TYPE = "unknown_type"
    REJECTED = "rejected"


class TooManyConflicts(RuntimeError):
    """Still conflicting after every attempt: let the queue redeliver the event later."""


@dataclass
class EventService:
    store: CustomerStore
    catalogs: CatalogSource
    clock: Clock
    rejected: RejectedEvents
    count: Callable[[str, int], None]
    log: Callable[..., None]
    max_attempts: int = 6
    keep_link_after_logout: bool = False  # "remember me" browsers (docs/identity.md)
    rows: CustomerRows | None = None  # what a CustomerDeleted erases besides the state

    def handle(self, body: str) -> Outcome:
        """Malformed events are kept with their reason and do not fail; transient errors raise."""
        try:
            raw = json.loads(body)
            event = parse_event(raw)
        except UnknownEventType as e:
            self.count("EventsIgnoredUnknownType", 1)
            self.log("ignored event: %s", e)
            return Outcome.UNKNOWN_TYPE
        except (ValueError, ValidationError) as e:
            reasons = event_errors(e) if isinstance(e, ValidationError) else [str(e)]
            event_id = _event_id(body)
            self.rejected.reject(body, event_id, reasons)
            self.count("EventsRejected", 1)
            self.log("rejected event %s: %s", event_id, "; ".join(reasons))
            return Outcome.REJECTED
        catalog = self.catalogs.catalog()
        decision = identity.apply_event(self.store, event, catalog, self.clock, self.count,
                                        self.max_attempts, self.keep_link_after_logout,
                                        self.rows)
        if decision is None:
            self.count("EventsDuplicate", 1)
            return Outcome.DUPLICATE
        self.count("EventsApplied", 1)
        return Outcome.APPLIED


def apply(store: CustomerStore, subject: str, step: Callable[[CustomerState], Decision],
          count: Callable[[str, int], None], max_attempts: int = 6,
          first: CustomerState | None = None, catalog: Catalog | None = None
          ) -> Decision | None:
    """Decide and commit, re-reading and deciding again on a write conflict; None when the
    decision had nothing to write. `first` is a state already read (the daily scan's page);
    `catalog` says what each activity does with a guest's messages (`identity.hold`)."""
    for attempt in range(max_attempts):
        state = first if first is not None else store.load(subject)
        first = None
        decision = step(state)
        if decision.duplicate:
            _report_errors(decision, count)
            return None
        guests = hold(decision, catalog)  # never to an anonymous browser (docs/identity.md)
        try:
            if decision.also is None:
                store.commit(decision.state, decision.effects, before=state)
            else:
                store.commit(decision.state, decision.effects, before=state, also=decision.also)
        except Conflict:
            count("WriteConflicts", 1)
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter before re-reading
            continue
        for kind, n in Counter(e.type for e in decision.effects).items():
            count(f"Effects_{kind}", n)
        for name, n in guests.items():
            count(name, n)
        _report_errors(decision, count)
        return decision
    raise TooManyConflicts(f"customer {opaque(subject)}: {max_attempts} write conflicts")


def _report_errors(decision: Decision, count: Callable[[str, int], None]) -> None:
    """Activities the decision skipped because they failed (the others' effects stand): each
    logged at ERROR (ids and the error, no personal data) and counted."""
    if decision.errors:
        count("ActivityErrors", len(decision.errors))
        for error in decision.errors:
            logging.getLogger("dialogue").error("activity skipped: %s", error)


class TimerSource(Protocol):
    def page(self, bucket: str, shard: int, cursor: dict[str, Any] | None,
             limit: int = 200) -> tuple[list[TimerRef], dict[str, Any] | None]: ...


class CustomerScan(Protocol):
    def page(self, segment: int, total: int, cursor: dict[str, Any] | None,
             limit: int = 500) -> tuple[list[CustomerState], dict[str, Any] | None, float]: ...


class Work(Protocol):
    def send(self, items: list[dict[str, Any]], delay: int = 0) -> None: ...


class DailyRuns(Protocol):
    def claim(self, day: str, at: str, segments: int) -> bool: ...

    def handed_out(self, day: str) -> None: ...

    def checked(self, day: str) -> bool: ...


class RfmHistogram(Protocol):
    def merged(self) -> dict[str, int]: ...

    def save_snapshot(self, day: str, histogram: dict[str, int]) -> None: ...

    def snapshot(self, day: str) -> dict[str, int] | None: ...


TimeLeft = Callable[[], float]  # seconds this invocation may still run
MARGIN_SECONDS = 60.0  # stop a page early enough to hand the rest on
RETRY_DELAY = 300  # seconds before a daily check's failed customers are tried again
RETRY_CHUNK = 1000  # subjects per retry work item (an SQS message holds 256 KB)


@dataclass
class WakeService:
    """A bucket shard's timers, at the bucket's end: each customer goes on from their wait."""

    store: CustomerStore
    timers: TimerSource
    catalogs: CatalogSource
    clock: Clock
    count: Callable[[str, int], None]
    threads: int = 8
    # A customer whose wake-up fails is logged and counted; the others are woken. The daily
    # check takes up the failed one as an overdue wait (`engine.daily`).
    log_error: Callable[..., None] = lambda *_, **__: None

    def wake_shard(self, bucket: str, shard: int, cursor: dict[str, Any] | None,
                   time_left: TimeLeft) -> dict[str, Any]:
        catalog = self.catalogs.catalog()
        # The execution woke at the bucket's end: nobody in it is early, whatever this clock says.
        ends = datetime.fromisoformat(bucket.replace("Z", "+00:00"))
        woken = 0
        while True:
            timers, cursor = self.timers.page(bucket, shard, cursor)
            now = max(self.clock.now(), ends)

            guests = _GuestTally()

            def one(timer: TimerRef, now: datetime = now,
                    guests: _GuestTally = guests) -> bool | Exception:
                try:
                    return apply(self.store, timer.subject,
                                 lambda state: wake(state, catalog, timer, now),
                                 guests, catalog=catalog) is not None
                except Exception as e:  # noqa: BLE001 - seen below; the others go on
                    return e

            with ThreadPoolExecutor(self.threads) as pool:
                results = list(pool.map(one, timers))
            guests.flush(self.count)
            woken += sum(r is True for r in results)
            self.count("TimersRead", len(timers))
            self.count("CustomersWoken", sum(r is True for r in results))
            _seen_failures("wake-up", [t.subject for t in timers], results, self.count,
                           self.log_error, "CustomersWakeFailed")
            if cursor is None:
                return {"more": False, "woken": woken}
            if time_left() < MARGIN_SECONDS:
                return {"more": True, "cursor": cursor, "woken": woken}


def _no_count(name: str, n: int) -> None:
    """Worker threads do not touch the (not thread-safe) metrics; totals are counted after."""


class _GuestTally:
    """What worker threads did with guests' messages (held for a link, dropped and why),
    added up under a lock and counted after the pool: the metrics object is not thread-safe.
    Their other counts are totals the caller counts itself (`_no_count`)."""

    def __init__(self) -> None:
        self._lock, self._counts = threading.Lock(), Counter[str]()

    def __call__(self, name: str, n: int) -> None:
        if name.startswith("GuestMessages"):
            with self._lock:
                self._counts[name] += n

    def flush(self, count: Callable[[str, int], None]) -> None:
        for name, n in self._counts.items():
            count(name, n)
        self._counts.clear()


def _seen_failures(what: str, subjects: list[str], results: list[Any],
                   count: Callable[[str, int], None], log_error: Callable[..., None],
                   metric: str) -> list[str]:
    """Each customer whose work raised: counted by kind, logged at ERROR under an opaque name
    (no customer id in logs). Returns their subjects."""
    failed = []
    for subject, result in zip(subjects, results, strict=True):
        if isinstance(result, Exception):
            kind = failure_kind(result)
            failed.append(subject)
            count(f"{metric}_{kind}", 1)
            log_error("%s of customer %s failed (%s): %s", what, opaque(subject), kind,
                      reason_of(result), exc_info=result,
                      extra={"customer": opaque(subject), "failure_kind": kind})
    return failed


@dataclass
class DailyCheck:
    """The daily check's start: one work item per scan segment, once per shop-local day."""

    runs: DailyRuns
    work: Work
    rfm: RfmHistogram
    clock: Clock
    zone: ZoneInfo
    segments: int
    count: Callable[[str, int], None]
    files: ActivityFiles | None = None
    log: Callable[..., None] = lambda *_: None

    def start(self) -> dict[str, Any]:
        now = self.clock.now()
        today = now.astimezone(self.zone).date()
        day = today.isoformat()
        if not self.runs.claim(day, now.isoformat(), self.segments):
            return {"day": day, "started": False}  # the schedule fired twice
        late = self.catch_up(today, now)
        # Today's quintiles, before any segment is refreshed: one snapshot for every worker.
        self.rfm.save_snapshot(day, self.rfm.merged())
        self.work.send([{"day": day, "segment": n, "total": self.segments,
                         **({"catch_up": late} if late else {})}
                        for n in range(self.segments)])
        for done in [*(at[:10] for at in late), day]:
            self.runs.handed_out(done)
        self.count("DailyScanSegments", self.segments)
        return {"day": day, "started": True, "segments": self.segments, "caught_up": late,
                "deactivated": self.deactivate_expired(now)}

    def catch_up(self, today: date, now: datetime) -> list[str]:
        """The instants of the days whose check never ran (a night the clocks skipped, a failed
        invocation, an outage), oldest first: today's workers check them before today."""
        missed = missed_days(today, lambda d: self.runs.checked(d.isoformat()))
        late = [d for d in missed if self.runs.claim(d.isoformat(), now.isoformat(), 0)]
        if late:
            self.count("DailyChecksCaughtUp", len(late))
            self.log("daily check catching up %s (their run did not happen)",
                     ", ".join(d.isoformat() for d in late))
        return [run_instant(d, now, self.zone).isoformat() for d in late]

    def deactivate_expired(self, now: datetime) -> list[str]:
        """Ended activities are marked inactive in their files. The workers treat them as ended
        already (no entry, waiting customers dropped); this makes the file say so. After the
        day's work is handed out: a failure here (S3 refusing, a timeout) costs only the
        marking, which the next day tries again, never the day's check."""
        if self.files is None:
            return []
        done: list[str] = []
        try:
            for activity_id in expired(self.files.catalog(max_age=0), now):
                if self.files.deactivate(activity_id):
                    done.append(activity_id)
        except Exception as e:  # noqa: BLE001 - logged and counted; tomorrow tries again
            self.count("ActivityDeactivationFailed", 1)
            self.log("marking ended activities inactive failed (tried again tomorrow): %r", e)
        if done:
            self.count("ActivitiesDeactivated", len(done))
            self.log("activities past their end date marked inactive: %s", ", ".join(done))
        return done


@dataclass
class DailyWorker:
    """One scan segment of the customers table through the daily check; what is left when time
    runs short is handed to the next worker as a cursor."""

    store: CustomerStore
    scan: CustomerScan
    work: Work
    rfm: RfmHistogram
    catalogs: CatalogSource
    clock: Clock
    zone: ZoneInfo
    count: Callable[[str, int], None]
    threads: int = 8
    log_error: Callable[..., None] = lambda *_, **__: None
    max_retries: int = 3
    _quintiles: dict[str, RfmBoundaries | None] = field(default_factory=dict)

    def quintiles(self, day: str | None) -> RfmBoundaries | None:
        """The day's RFM cut points (its snapshot; for a refresh, the histogram now)."""
        key = day or "now"
        if key not in self._quintiles or day is None:
            histogram = self.rfm.snapshot(day) if day else self.rfm.merged()
            self._quintiles = {key: boundaries(histogram, self.zone) if histogram else None}
        return self._quintiles[key]

    def handle(self, item: dict[str, Any], time_left: TimeLeft) -> dict[str, Any]:
        # A refresh was started because a segment file just changed: read the catalog now.
        catalog = (self.catalogs.catalog(max_age=0) if "refresh" in item
                   else self.catalogs.catalog())
        rfm = self.quintiles(item.get("day"))
        refresh: list[str] | None = item.get("refresh")
        late = [datetime.fromisoformat(at) for at in item.get("catch_up", [])]

        def step(state: CustomerState, now: datetime) -> Decision:
            if state.deleted_at is not None:  # a tombstone (`engine.forget`): nobody to check
                return Decision(state=state, duplicate=True)
            if refresh is not None:  # "refresh now" of named segments, not the daily check
                return refresh_now(state, catalog, now, refresh, rfm)
            return daily_runs(state, catalog, [*late, now], self.zone, rfm)

        if "retry" in item:  # customers who failed earlier, by subject
            checked, (changed, failed), units, cursor = len(item["retry"]), \
                self._check(item["retry"], step, catalog), 0.0, None
        else:
            cursor, checked, changed, units, failed = item.get("cursor"), 0, 0, 0.0, []
            while True:
                with _collector_paused():
                    states, cursor, read = self.scan.page(item["segment"], item["total"], cursor)
                n, bad = self._check(states, step, catalog)
                changed, failed = changed + n, failed + bad
                checked, units = checked + len(states), units + read
                if cursor is None or time_left() < MARGIN_SECONDS:
                    break
            if cursor is not None:
                self.work.send([{**item, "cursor": cursor}])
        self._retry_later(item, failed)
        self.count("CustomersChecked", checked)
        self.count("CustomersChanged", changed)
        return {"checked": checked, "changed": changed, "failed": len(failed),
                "read_units": units, "more": cursor is not None}

    def _check(self, customers: list[CustomerState] | list[str],
               step: Callable[[CustomerState, datetime], Decision],
               catalog: Catalog) -> tuple[int, list[str]]:
        """Each customer on its own: one that fails is seen and kept; the others go on."""
        now, guests = self.clock.now(), _GuestTally()

        def one(customer: CustomerState | str) -> bool | Exception:
            first = customer if isinstance(customer, CustomerState) else None
            subject = first.subject if first is not None else str(customer)
            try:
                return apply(self.store, subject, lambda state: step(state, now), guests,
                             first=first, catalog=catalog) is not None
            except Exception as e:  # noqa: BLE001 - seen below; the others go on
                return e

        with _collector_paused(), ThreadPoolExecutor(self.threads) as pool:
            results = list(pool.map(one, customers))
        guests.flush(self.count)
        subjects = [c.subject if isinstance(c, CustomerState) else c for c in customers]
        failed = _seen_failures("daily check", subjects, results, self.count, self.log_error,
                                "DailyCustomersFailed")
        return sum(r is True for r in results), failed

    def _retry_later(self, item: dict[str, Any], failed: list[str]) -> None:
        """Failed customers come back as a work item of their own (after `RETRY_DELAY`), up to
        `max_retries` times; then they are left to the next day's check, logged and counted."""
        if not failed:
            return
        attempt = int(item.get("attempt", 0)) + 1
        if attempt > self.max_retries:
            self.count("DailyCustomersAbandoned", len(failed))
            self.log_error("daily check: %d customers still failing after %d tries, left to "
                           "the next day's check: %s", len(failed), self.max_retries,
                           ", ".join(opaque(s) for s in failed[:50]))
            return
        base = {k: v for k, v in item.items() if k not in ("cursor", "retry", "attempt")}
        self.work.send([{**base, "retry": failed[i:i + RETRY_CHUNK], "attempt": attempt}
                        for i in range(0, len(failed), RETRY_CHUNK)], delay=RETRY_DELAY)
        self.count("DailyCustomersRetried", len(failed))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A scan page brings hundreds of states with long histories at once: the cyclic collector
    would walk them again and again while they are parsed and checked (a quarter of the worker's
    CPU in `bench/daily.py`), yet they hold no cycle and go by reference counting. It runs as
    usual between pages, so what a page leaves in cycles is bounded by one page."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _event_id(body: str) -> str | None:
    """The envelope id, if there is one: names the event in errors without its content."""
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def refresh_now(state: CustomerState, catalog: Catalog, now: datetime,
                segments: list[str], rfm: RfmBoundaries | None = None) -> Decision:
    """Only the named rule-based segments, now (a new or changed segment, or on demand)."""
    state = writable(state)
    effects = segment_rules.refresh(state, catalog, now, rfm, only=set(segments))
    return Decision(state=state, effects=effects, duplicate=not effects)


@dataclass
class SegmentRefresh:
    """Named segments refreshed over every customer, through the daily check's workers."""

    work: Work
    segment_id: Callable[[str], str | None]  # a segment file's key → the segment's id
    clock: Clock
    segments: int
    count: Callable[[str, int], None]

    def start(self, ids: list[str]) -> dict[str, Any]:
        ids = sorted(set(ids))
        if ids:
            at = self.clock.now().isoformat()
            self.work.send([{"refresh": ids, "segment": n, "total": self.segments, "at": at}
                            for n in range(self.segments)])
            self.count("SegmentRefreshes", len(ids))
        return {"refresh": ids, "segments": self.segments if ids else 0}

    def start_for_files(self, keys: list[str]) -> dict[str, Any]:
        return self.start([i for i in map(self.segment_id, keys) if i])


class Waker(Protocol):
    def arm(self, bucket: str, now: datetime) -> str: ...


@dataclass
class ArmService:
    """New timer rows (from the table's stream): make sure their buckets will wake up."""

    waker: Waker
    clock: Clock
    count: Callable[[str, int], None]

    def handle(self, buckets: list[str | None]) -> dict[str, int]:
        distinct = sorted({b for b in buckets if b is not None})
        outcomes = Counter(self.waker.arm(b, self.clock.now()) for b in distinct)
        for outcome, n in outcomes.items():
            self.count(f"Buckets_{outcome}", n)
        return dict(outcomes)
