"""`DeliveryService.handle`: one message job in; sent, suppressed, held, scheduled, or
dead-lettered with why. Never sent twice, never lost (`delivery.jobs` has the state machine).

Per message sent: two reads (the customer's state, the suppression list), the claim, one
provider call, the confirmation (the provider's message id on the row), then MessageSent on the
bus: only for a send the provider confirmed. A job that is not sent is either suppressed or held
(MessageSuppressed, from its row) or dead-lettered with its reason (failed: MessageSuppressed;
unknown: MessageOutcomeUnknown).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from dialogue.delivery.jobs import Abandoned, Busy, Claimed, Jobs, JobStatus, Settled
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
from dialogue.delivery.rate import spread
from dialogue.delivery.reconcile import DeadLetters, Reporter
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
    UNKNOWN = "unknown"
    DUPLICATE = "duplicate"


class LeftToReconcile(Exception):  # noqa: N818 - a state, not a fault
    """The job's row is `sending` (or `sent`): a redelivery or the reconciliation settles it,
    so the record is not dead-lettered by the handler even on its last try."""


class JobBusy(LeftToReconcile):
    """Another attempt holds the job's lease: try again after it."""


class NoTimeLeft(ProviderUnavailable):
    """Too little of the invocation is left for a provider call: not claimed, try later."""


class Recipients(Protocol):
    def state(self, subject: str) -> CustomerState | None: ...
    def suppressed(self, address_hash: str) -> bool: ...


class Sender(Protocol):
    def send(self, message: Any) -> str: ...


class Outcomes(Protocol):
    def sent(self, job: MessageQueued, provider: str, at: Any) -> None: ...


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
    error: Callable[..., None] | None = None  # ERROR logs; `log` when not given
    # Longer than the function's timeout: a lease that ran out belongs to a dead attempt.
    lease: timedelta = timedelta(seconds=60)
    # The longest a provider call may take (connect + read timeouts, and the rate limiter).
    provider_budget: timedelta = timedelta(seconds=15)
    max_receives: int = 8  # the queue's maxReceiveCount: the last try dead-letters with why

    def handle_record(self, body: str, receive_count: int = 1,
                      retry_later: Callable[[], None] | None = None,
                      time_left: Callable[[], timedelta] | None = None) -> Delivered:
        """A queue record: its failure logged at ERROR with the job key, counted by kind, and on
        the last try dead-lettered with the reason rather than left to the redrive's silence."""
        job_json = job_json_from_message(body)
        last = receive_count >= self.max_receives
        released = "dynamodb" not in json.loads(body)  # not from the outbox: from the release
        try:
            return self.handle(job_json, retry_later, last_try=last, time_left=time_left,
                               released=released)
        except Exception as e:
            key = _job_key(job_json)
            (self.error or self.log)("message job %s failed (try %d of %d): %s: %s", key,
                                     receive_count, self.max_receives, type(e).__name__, e,
                                     exc_info=e)
            self.count(f"MessageErrors_{type(e).__name__}", 1)
            if not last or isinstance(e, LeftToReconcile):
                raise
            self._reporter().dead_letter(job_json, key, f"gave up after {receive_count} tries: "
                                                        f"{type(e).__name__}: {e}")
            return self._outcome(Delivered.FAILED)

    def handle(self, job_json: str, retry_later: Callable[[], None] | None = None, *,
               last_try: bool = False,
               time_left: Callable[[], timedelta] | None = None,
               released: bool = False) -> Delivered:
        """Transient provider errors raise (the queue retries, after `retry_later` set the
        back-off) unless it is the last try; permanent ones dead-letter."""
        job = MessageQueued.model_validate_json(job_json)
        now = self.clock.now()
        state = self.recipients.state(job.subject)
        address = address_of(job, state)
        suppressed = address is not None and self.recipients.suppressed(suppression_key(address))
        template = self.catalogs.catalog().templates.get(job.template)
        decision = plan(job, state, suppressed, template, now, self.settings, released)
        match decision:
            case Schedule():
                done = self.jobs.schedule(job.key, now, decision.release_at, decision.reason)
                return self._outcome(Delivered.SCHEDULED if done else Delivered.DUPLICATE)
            case Suppress() | Hold():
                status = JobStatus.SUPPRESSED if isinstance(decision, Suppress) else JobStatus.HELD
                done = self.jobs.finish(job.key, status, now, decision.reason)
                if done:
                    self.log("message %s %s: %s", job.key, status.value, decision.reason)
                    kind = decision.kind if isinstance(decision, Suppress) else "template"
                    self.count(f"{status.value.title()}_{kind}", 1)
                return self._outcome(Delivered(status.value) if done else Delivered.DUPLICATE)
            case Email() | Sms():
                if time_left is not None and time_left() < self.provider_budget:
                    raise NoTimeLeft(f"{time_left()} left in this invocation")
                return self._send(job, job_json, decision, retry_later, last_try)
        raise AssertionError(decision)  # pragma: no cover - every plan is handled above

    def _send(self, job: MessageQueued, job_json: str, message: Email | Sms,
              retry_later: Callable[[], None] | None, last_try: bool) -> Delivered:
        provider = "ses" if isinstance(message, Email) else "sns"
        now = self.clock.now()
        claim = self.jobs.claim(job.key, uuid.uuid4().hex, now, now + self.lease, provider)
        match claim:
            case Settled(status=status):
                if status == JobStatus.SENT:  # its MessageSent may not have reached the bus
                    self.outcomes.sent(job, provider, now)
                return self._outcome(Delivered.DUPLICATE)
            case Busy(lease_until=until):
                self.count("SendBusy", 1)
                if retry_later is not None:
                    retry_later()
                raise JobBusy(f"job {job.key} is being sent by another attempt until {until}")
            case Abandoned(attempt=dead):
                return self._settle(job, job_json, dead, JobStatus.UNKNOWN,
                                    f"{provider} outcome unknown: attempt {dead} stopped between "
                                    f"its claim and the provider's answer (its lease ran out)")
            case Claimed(attempt=attempt):
                return self._call(job, job_json, message, provider, attempt, retry_later,
                                  last_try)
        raise AssertionError(claim)  # pragma: no cover

    def _call(self, job: MessageQueued, job_json: str, message: Email | Sms, provider: str,
              attempt: str, retry_later: Callable[[], None] | None, last_try: bool) -> Delivered:
        try:
            provider_id = (self.mailer if isinstance(message, Email) else self.texter).send(
                message)
        except ProviderUnavailable as e:
            if last_try:  # it did not go, and will not be tried again: say why
                return self._settle(job, job_json, attempt, JobStatus.FAILED,
                                    f"{provider} unavailable on the last try: {e}")
            self.jobs.release(job.key, attempt)  # it did not go: the queue brings it back
            self.count("ProviderRetries", 1)
            if retry_later is not None:
                retry_later()
            raise
        except ProviderRejected as e:
            return self._settle(job, job_json, attempt, JobStatus.FAILED,
                                f"{provider} refused it: {e}")
        except Exception as e:  # noqa: BLE001 - the provider may or may not have sent it
            # Never twice: it is not retried; never lost: it is dead-lettered with why.
            return self._settle(job, job_json, attempt, JobStatus.UNKNOWN,
                                f"{provider} outcome unknown: {type(e).__name__}")
        try:
            confirmed = self.jobs.mark_sent(job.key, attempt, self.clock.now(), provider_id)
        except Exception as e:  # the row stays `sending`: reported unknown at its lease's end
            raise LeftToReconcile(f"job {job.key} sent, not recorded: {type(e).__name__}") from e
        if not confirmed:
            (self.error or self.log)("message job %s: %s confirmed it after its lease ran out "
                                     "(reported as outcome unknown)", job.key, provider)
            self.count("LateConfirmations", 1)
        if isinstance(message, Sms):
            self.count("SmsParts", message.parts)
        self.outcomes.sent(job, provider, self.clock.now())  # if it fails, the redelivery does
        return self._outcome(Delivered.SENT)

    def _settle(self, job: MessageQueued, job_json: str, attempt: str, status: JobStatus,
                reason: str) -> Delivered:
        if not self.jobs.settle(job.key, attempt, status, self.clock.now(), reason):
            return self._outcome(Delivered.DUPLICATE)  # settled by someone else, who reports it
        self._reporter().report(job.key, job_json, status, reason)
        return self._outcome(Delivered(status.value))

    def _reporter(self) -> Reporter:
        return Reporter(self.jobs, self.dead_letters, self.clock, self.count,
                        self.error or self.log)

    def _outcome(self, outcome: Delivered) -> Delivered:
        self.count(f"Messages_{outcome.value}", 1)
        return outcome


def _job_key(job_json: str) -> str:
    try:
        return MessageQueued.model_validate_json(job_json).key
    except ValueError:  # pydantic's ValidationError is one
        return "unreadable job"


class Suppressions(Protocol):
    def suppress(self, address_hash: str, reason: str, at: Any) -> None: ...


class Engagements(Protocol):
    def handle(self, event: dict[str, Any]) -> Any: ...


@dataclass
class SuppressionService:
    """SES's events: after a permanent bounce, a complaint or an unsubscribe the address is
    never written to again; an open, a click, a delivery or a bounce is handed to `engagement`
    (the customer's behaviour). Returns the number of addresses suppressed."""

    suppressions: Suppressions
    clock: Clock
    count: Callable[[str, int], None]
    engagement: Engagements

    def handle(self, body: str) -> int:
        event = json.loads(body)
        detail_type = str(event.get("detail-type", ""))
        found = addresses_to_suppress(detail_type, event.get("detail") or {})
        for address, reason in found:
            self.suppressions.suppress(suppression_key(address), reason, self.clock.now())
        self.count("AddressesSuppressed", len(found))
        if detail_type in ENGAGEMENT:  # a bounce also may take a `message_outcome`'s path
            self.engagement.handle(event)
        return len(found)


class DueJobs(Protocol):
    def due(self, now: Any) -> list[str]: ...
    def schedule(self, job_key: str, at: datetime, release_at: datetime,
                 reason: str | None = None) -> bool: ...


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
        now = self.clock.now()
        due, later = spread(self.jobs.due(now), now)
        for job_key, release_at, reason in later:  # an activity's rate limit: a later run
            self.jobs.schedule(job_key, now, release_at, reason)
        self.queue.send(due)
        self.count("MessagesReleased", len(due))
        if later:
            self.count("MessagesSpread", len(later))
        return len(due)


def job_json_from_message(body: str) -> str:
    """The job's JSON: from a dispatcher message (a DynamoDB stream record), or as released."""
    message = json.loads(body)
    if "dynamodb" in message:
        return str(message["dynamodb"]["NewImage"]["payload"]["S"])
    return body
