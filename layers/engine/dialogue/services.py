"""Use cases. `EventService.handle`: one shop event in, state and effects committed once."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from dialogue.engine.decide import decide
from dialogue.model.events import UnknownEventType, event_errors, parse_event
from dialogue.ports import CatalogSource, Clock, Conflict, CustomerStore, RejectedEvents


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
        for attempt in range(self.max_attempts):
            state = self.store.load(event.subject)
            decision = decide(state, event, catalog, self.clock.now())
            if decision.duplicate:
                self.count("EventsDuplicate", 1)
                return Outcome.DUPLICATE
            try:
                self.store.commit(decision.state, decision.effects)
            except Conflict:
                self.count("WriteConflicts", 1)
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter before re-reading
                continue
            self.count("EventsApplied", 1)
            for kind, n in Counter(e.type for e in decision.effects).items():
                self.count(f"Effects_{kind}", n)
            return Outcome.APPLIED
        raise TooManyConflicts(f"event {event.id}: {self.max_attempts} write conflicts")


def _event_id(body: str) -> str | None:
    """The envelope id, if there is one: names the event in errors without its content."""
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
