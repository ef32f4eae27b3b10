"""A message job as a state machine, and the port its rows are kept behind.

    queued ─┬─> scheduled ──> (released) ──┐
            └──────────────────────────────┴─> sending(attempt, lease) ─┬─> sent(provider id)
                                                                        ├─> failed(reason)
    queued/scheduled ─> suppressed | held (reason)                      ├─> unknown(reason)
                                                                        └─> queued (not sent)

`sending` is a claim with a lease, as powertools' idempotency record is "in progress" with an
expiry: the attempt that holds it is the only one that may call the provider. A redelivery that
finds the lease running backs off; one that finds it run out knows the attempt died somewhere
between its claim and the provider's answer. SES and SNS take no idempotency key and offer no
way to ask whether a message went, so that outcome is *unknown*: the job is dead-lettered with
that reason (and `MessageOutcomeUnknown`), never sent again. `failed` and `unknown` rows stay
*unsettled* (in the table's `unsettled` index) until they are in the dead-letter queue, so a
crash between the two is found by the reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class JobStatus(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    HELD = "held"
    FAILED = "failed"
    UNKNOWN = "unknown"


# What the bus hears when a job ends without being sent (the row's `outcome`, relayed from the
# table's stream). MessageSent is put by send_message itself, only for a provider-confirmed send.
# A provider's refusal is a message not sent, as a suppression is (docs/events.md); an unknown
# outcome is neither sent nor suppressed: the mail may have been delivered.
OUTCOME = {JobStatus.SUPPRESSED: "MessageSuppressed", JobStatus.HELD: "MessageSuppressed",
           JobStatus.FAILED: "MessageSuppressed", JobStatus.UNKNOWN: "MessageOutcomeUnknown"}



def control_reason(reason: str | None) -> str | None:
    """What held or skipped a message, as the statistics group it ("quiet hours 22:00-08:00 in
    Europe/Paris", "capped by 1 per day"): a control's reason without its release time; None
    for any other reason (the daily send time, consent, ...)."""
    for prefix in ("held: ", "skipped: "):
        if reason and reason.startswith(prefix):
            return reason.removeprefix(prefix).split(", release at ")[0]
    return None

@dataclass(frozen=True)
class Claimed:
    """This attempt holds the job: it alone may call the provider until `lease_until`."""

    attempt: str


@dataclass(frozen=True)
class Busy:
    """Another attempt holds a lease that has not run out: it may be sending right now."""

    lease_until: datetime


@dataclass(frozen=True)
class Abandoned:
    """Another attempt's lease ran out: it died between its claim and the provider's answer."""

    attempt: str


@dataclass(frozen=True)
class Settled:
    """The job already reached `status` (sent, failed, ...): nothing to send."""

    status: str


Claim = Claimed | Busy | Abandoned | Settled


@dataclass(frozen=True)
class Unsettled:
    """A row the reconciliation looks at: `sending` past its lease, `failed`/`unknown` not yet
    in the dead-letter queue, or `queued`/`scheduled` and not handled in time (its message was
    lost before send_message: put on the queue again, dead-lettered after a few tries)."""

    job_key: str
    status: str
    attempt: str | None
    reason: str | None
    payload: str
    requeued: int = 0  # times the reconciliation put it back on the queue (queued/scheduled)


class Jobs(Protocol):
    def claim(self, job_key: str, attempt: str, now: datetime, lease_until: datetime,
              provider: str) -> Claim: ...
    def mark_sent(self, job_key: str, attempt: str, now: datetime, provider_id: str) -> bool: ...
    def release(self, job_key: str, attempt: str) -> None: ...
    def settle(self, job_key: str, attempt: str, status: JobStatus, now: datetime,
               reason: str) -> bool: ...
    def reported(self, job_key: str, status: JobStatus, now: datetime) -> bool: ...
    def schedule(self, job_key: str, at: datetime, release_at: datetime,
                 reason: str | None = None) -> bool: ...
    def finish(self, job_key: str, status: JobStatus, at: datetime, reason: str) -> bool: ...
    def unsettled(self, now: datetime) -> list[Unsettled]: ...
    def requeued(self, job_key: str, status: JobStatus, now: datetime) -> bool: ...
    def abandon(self, job_key: str, status: JobStatus, now: datetime, reason: str) -> bool: ...
