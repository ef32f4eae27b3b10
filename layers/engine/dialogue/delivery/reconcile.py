"""Jobs that did not reach an end are found and ended, with why.

`Reporter` puts a job that was not sent in the messages dead-letter queue with its reason, then
marks its row reported (which puts its outcome on the bus). `ReconcileService` runs every few
minutes: a `sending` row whose lease ran out is settled as *outcome unknown* and reported; a
`failed` or `unknown` row that is not yet reported (its function died in between) is reported;
a `queued` row not handled within an hour (or a `scheduled` one an hour past its send time) is
put on the messages queue again, up to three times, then dead-lettered as never handled.
A job may reach the dead-letter queue twice in a race (a reconciliation and a redelivery at the
same moment), never zero times; its row's outcome is put on the bus once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dialogue.delivery.jobs import Jobs, JobStatus, Unsettled
from dialogue.ports import Clock


class Requeue(Protocol):
    def send(self, bodies: list[str]) -> None: ...


class DeadLetters(Protocol):
    def reject(self, body: str, event_id: str | None, reasons: list[str]) -> None: ...


@dataclass
class Reporter:
    jobs: Jobs
    dead_letters: DeadLetters
    clock: Clock
    count: Callable[[str, int], None]
    error: Callable[..., None]

    def report(self, job_key: str, job_json: str, status: JobStatus, reason: str) -> None:
        """Dead-letter first, then mark: a crash in between leaves the row unsettled, and the
        reconciliation reports it again rather than never."""
        self.dead_letter(job_json, job_key, reason)
        self.jobs.reported(job_key, status, self.clock.now())
        self.count(f"DeadLettered_{status.value}", 1)

    def dead_letter(self, job_json: str, job_key: str, reason: str) -> None:
        self.dead_letters.reject(job_json, job_key, [reason])
        self.error("message job %s dead-lettered: %s", job_key, reason)


@dataclass
class ReconcileService:
    jobs: Jobs
    reporter: Reporter
    clock: Clock
    count: Callable[[str, int], None]
    # Rows settled moments ago are left to the function settling them (no double report).
    grace: timedelta = timedelta(minutes=2)
    requeue: Requeue | None = None  # the messages queue
    max_requeues: int = 3

    def run(self) -> Counter[str]:
        """What it ended, by the status it found: sending (lease ran out), failed, unknown."""
        now = self.clock.now()
        done: Counter[str] = Counter()
        for row in self.jobs.unsettled(now - self.grace):
            if row.status == JobStatus.SENDING and row.attempt is not None:
                reason = (f"outcome unknown: attempt {row.attempt} did not finish before its "
                          f"lease ran out (found by the reconciliation)")
                if self.jobs.settle(row.job_key, row.attempt, JobStatus.UNKNOWN, now, reason):
                    self.reporter.report(row.job_key, row.payload, JobStatus.UNKNOWN, reason)
                    done[row.status] += 1
            elif row.status in (JobStatus.FAILED, JobStatus.UNKNOWN):
                self.reporter.report(row.job_key, row.payload, JobStatus(row.status),
                                     row.reason or f"{row.status} (no reason recorded)")
                done[row.status] += 1
            elif row.status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
                done[self._not_handled(row, JobStatus(row.status), now)] += 1
        self.count("JobsReconciled", sum(done.values()))
        return done

    def _not_handled(self, row: Unsettled, status: JobStatus, now: datetime) -> str:
        """A job send_message never saw (its queue message was lost, or its release missed):
        back on the messages queue (claims make a second copy harmless), a few times; then
        dead-lettered with why."""
        if self.requeue is not None and row.requeued < self.max_requeues:
            if self.jobs.requeued(row.job_key, status, now):
                self.requeue.send([row.payload])
                self.count("JobsRequeued", 1)
            return "requeued"
        reason = (f"never handled: still {status.value} after {row.requeued} returns to the "
                  "messages queue (found by the reconciliation)")
        if self.jobs.abandon(row.job_key, status, now, reason):
            self.reporter.report(row.job_key, row.payload, JobStatus.FAILED, reason)
        return "abandoned"
