"""`DeliveryService.handle`: one message job in; sent, suppressed, held or scheduled, once.

Per message: two reads (the customer's state, the suppression list), at most one provider call
and one conditional write on the job row. MessageSuppressed comes from that row's change through
the table's stream; MessageSent is put on the bus once the provider has taken the message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from dialogue.delivery.plan import (
    DeliverySettings,
    Email,
    Hold,
    Schedule,
    Sms,
    Suppress,
    address_of,
    plan,
    suppression_key,
)
from dialogue.delivery.providers_port import ProviderRejected, ProviderUnavailable
from dialogue.delivery.suppression import addresses_to_suppress
from dialogue.delivery.tracking import ENGAGEMENT
from dialogue.model.customer import CustomerState
from dialogue.model.effects import MessageQueued
from dialogue.ports import CatalogSource, Clock


class Delivered(StrEnum):
    SENT = "sent"
    SUPPRESSED = "suppressed"
    HELD = "held"
    SCHEDULED = "scheduled"
    FAILED = "failed"
    DUPLICATE = "duplicate"


class Jobs(Protocol):
    def claim(self, job_key: str, at: Any, provider: str) -> str: ...
    def schedule(self, job_key: str, at: Any, release_at: Any) -> bool: ...
    def revert(self, job_key: str) -> None: ...
    def finish(self, job_key: str, status: str, at: Any, reason: str,
               expected: str = "queued") -> bool: ...


class Recipients(Protocol):
    def state(self, subject: str) -> CustomerState | None: ...
    def suppressed(self, address_hash: str) -> bool: ...


class Sender(Protocol):
    def send(self, message: Any) -> str: ...


class Outcomes(Protocol):
    def sent(self, job: MessageQueued, provider: str, at: Any) -> None: ...


class DeadLetters(Protocol):
    def reject(self, body: str, event_id: str | None, reasons: list[str]) -> None: ...


@dataclass
class DeliveryService:
    jobs: Jobs
    recipients: Recipients
    catalogs: CatalogSource
    mailer: Sender
    texter: Sender
    dead_letters: DeadLetters
    outcomes: Outcomes
    settings: DeliverySettings
    clock: Clock
    count: Callable[[str, int], None]
    log: Callable[..., None]

    def handle(self, job_json: str, retry_later: Callable[[], None] | None = None) -> Delivered:
        """Transient provider errors raise (the queue retries, after `retry_later` set the
        back-off); permanent ones dead-letter."""
        job = MessageQueued.model_validate_json(job_json)
        now = self.clock.now()
        state = self.recipients.state(job.subject)
        address = address_of(job, state)
        suppressed = address is not None and self.recipients.suppressed(suppression_key(address))
        template = self.catalogs.catalog().templates.get(job.template)
        decision = plan(job, state, suppressed, template, now, self.settings)
        match decision:
            case Schedule():
                done = self.jobs.schedule(job.key, now, decision.release_at)
                return self._outcome(Delivered.SCHEDULED if done else Delivered.DUPLICATE)
            case Suppress() | Hold():
                status = "suppressed" if isinstance(decision, Suppress) else "held"
                done = self.jobs.finish(job.key, status, now, decision.reason)
                if done:
                    self.log("message %s %s: %s", job.key, status, decision.reason)
                    kind = decision.kind if isinstance(decision, Suppress) else "template"
                    self.count(f"{status.title()}_{kind}", 1)
                return self._outcome(Delivered(status) if done else Delivered.DUPLICATE)
            case Email() | Sms():
                return self._send(job, job_json, decision, now, retry_later)
        raise AssertionError(decision)  # pragma: no cover - every plan is handled above

    def _send(self, job: MessageQueued, job_json: str, message: Email | Sms, now: Any,
              retry_later: Callable[[], None] | None) -> Delivered:
        provider = "ses" if isinstance(message, Email) else "sns"
        claim = self.jobs.claim(job.key, now, provider)
        if claim == "sent":  # sent before; its MessageSent may not have reached the bus
            self.outcomes.sent(job, provider, now)
        if claim != "claimed":
            return self._outcome(Delivered.DUPLICATE)
        try:
            (self.mailer if isinstance(message, Email) else self.texter).send(message)
        except ProviderUnavailable:
            self.jobs.revert(job.key)  # it did not go: the queue brings it back
            self.count("ProviderRetries", 1)
            if retry_later is not None:
                retry_later()
            raise
        except ProviderRejected as e:
            return self._fail(job, job_json, now, f"{provider} refused it: {e}")
        except Exception as e:  # noqa: BLE001 - the provider may or may not have sent it
            # Never twice: it is not retried; never lost: it is dead-lettered with why.
            return self._fail(job, job_json, now, f"{provider} outcome unknown: "
                                                  f"{type(e).__name__}")
        if isinstance(message, Sms):
            self.count("SmsParts", message.parts)
        self.outcomes.sent(job, provider, now)  # if this fails, the redelivery publishes it
        return self._outcome(Delivered.SENT)

    def _fail(self, job: MessageQueued, job_json: str, now: Any, reason: str) -> Delivered:
        self.jobs.finish(job.key, "failed", now, reason, expected="sent")
        self.dead_letters.reject(job_json, job.key, [reason])
        self.log("message %s failed: %s", job.key, reason)
        return self._outcome(Delivered.FAILED)

    def _outcome(self, outcome: Delivered) -> Delivered:
        self.count(f"Messages_{outcome.value}", 1)
        return outcome


class Suppressions(Protocol):
    def suppress(self, address_hash: str, reason: str, at: Any) -> None: ...


class Engagements(Protocol):
    def handle(self, event: dict[str, Any]) -> Any: ...


@dataclass
class SuppressionService:
    """SES's events: after a permanent bounce, a complaint or an unsubscribe the address is
    never written to again; an open or a click is handed to `engagement` (the customer's
    behaviour). Returns the number of addresses suppressed."""

    suppressions: Suppressions
    clock: Clock
    count: Callable[[str, int], None]
    engagement: Engagements

    def handle(self, body: str) -> int:
        event = json.loads(body)
        detail_type = str(event.get("detail-type", ""))
        if detail_type in ENGAGEMENT:
            self.engagement.handle(event)
            return 0
        found = addresses_to_suppress(detail_type, event.get("detail") or {})
        for address, reason in found:
            self.suppressions.suppress(suppression_key(address), reason, self.clock.now())
        self.count("AddressesSuppressed", len(found))
        return len(found)


class DueJobs(Protocol):
    def due(self, now: Any) -> list[str]: ...


class Requeue(Protocol):
    def send(self, bodies: list[str]) -> None: ...


@dataclass
class ReleaseService:
    """Every few minutes: scheduled messages whose send time has come go back on the queue.
    Releasing one twice is harmless: send_message's claim lets it go once."""

    jobs: DueJobs
    queue: Requeue
    clock: Clock
    count: Callable[[str, int], None]

    def release(self) -> int:
        due = self.jobs.due(self.clock.now())
        self.queue.send(due)
        self.count("MessagesReleased", len(due))
        return len(due)


def job_json_from_message(body: str) -> str:
    """The job's JSON: from an OutboxPipe message (a DynamoDB stream record), or as released."""
    message = json.loads(body)
    if "dynamodb" in message:
        return str(message["dynamodb"]["NewImage"]["payload"]["S"])
    return body
