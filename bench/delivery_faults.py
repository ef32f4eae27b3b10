"""The delivery fault run: message jobs sent under provider failures, lost replies, function
kills and a queue that delivers late, out of order and twice; then counted.

The real `DeliveryService`, `ReconcileService` and `DynamoJobs` run on moto's DynamoDB (the
table built from infra/template.yaml, with its `unsettled` index). What is simulated:
- the provider (SES's role): throttled or down (not sent), refused, or accepted with its reply
  lost (a read timeout after the accept);
- DynamoDB replies lost and the write retried by botocore (it reaches the table twice);
- the function killed (`Kill`, a BaseException nothing catches) before the claim, after the claim
  before the provider call, after the provider accepted before the row is marked sent, or after
  the mark before MessageSent, and the reconciliation killed between the dead-letter and its mark;
- the give-back of a claim after a throttle refused;
- SQS: each job delivered once or twice (the second copy late), picked in random order,
  invisible for the visibility timeout after a failure, moved to the DLQ without a reason by
  the redrive after `max_receives`.
Then every job is counted: sent once, sent twice, dead-lettered with a reason, lost (neither
sent nor dead-lettered with a reason), and MessageSent for a message the provider never took.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError
from dialogue.aws import keys
from dialogue.aws.jobs import DynamoJobs
from dialogue.aws.sqs import backoff_seconds
from dialogue.delivery.plan import DeliverySettings
from dialogue.delivery.providers_port import ProviderRejected, ProviderUnavailable
from dialogue.delivery.reconcile import ReconcileService, Reporter
from dialogue.delivery.service import DeliveryService
from dialogue.engine.catalog import Catalog
from dialogue.model.customer import ConsentState, CustomerState
from dialogue.model.effects import MessageQueued
from dialogue.model.events import Profile
from dialogue.model.template import EmailTemplate

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VISIBILITY = timedelta(seconds=180)  # the messages queue's VisibilityTimeout
KILL_POINTS = ("before_claim", "after_claim", "after_accept", "after_mark")


class Kill(BaseException):
    """The function's process ends here (its timeout, an out-of-memory): nothing runs after."""


@dataclass
class Faults:
    unavailable: float = 0.18  # provider: throttled or 5xx, the message did not go
    rejected: float = 0.04  # provider: refused for good
    timeout: float = 0.08  # provider: accepted, its reply lost (read timeout)
    kill: float = 0.12  # an invocation killed at one of KILL_POINTS
    lost_reply: float = 0.08  # a DynamoDB write's reply lost, botocore retries it
    release_refused: float = 0.3  # the give-back of a claim after a throttle fails
    twice: float = 0.3  # a job delivered twice by the queue, the second copy late
    reconcile_kill: float = 0.2  # the reconciliation killed after a dead-letter


@dataclass
class Tally:
    jobs: int = 0
    sent_once: int = 0
    sent_twice: int = 0
    dead_lettered: int = 0  # not sent by the provider, in the DLQ with a reason
    unknown_dead_lettered: int = 0  # accepted by the provider, in the DLQ as outcome unknown
    lost: int = 0  # neither sent nor dead-lettered with a reason
    false_sent: int = 0  # MessageSent for a message the provider never took
    wrong_outcome: int = 0  # an unknown outcome published as MessageSuppressed, or none
    redriven_without_reason: int = 0
    injected: Counter[str] = field(default_factory=Counter)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def now(self) -> datetime:
        return self.at


class LossyDynamo:
    """A DynamoDB client whose UpdateItem replies are sometimes lost: botocore's retry then
    sends the same request again, and its answer is the one the caller sees."""

    def __init__(self, client: Any, rng: random.Random, rate: float, injected: Counter[str]):
        self._client, self._rng, self._rate, self._injected = client, rng, rate, injected

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        if self._rng.random() < self._rate:
            self._injected["lost DynamoDB reply, retried"] += 1
            with contextlib.suppress(ClientError):  # the first try's answer is lost either way
                self._client.update_item(**kwargs)
        return self._client.update_item(**kwargs)


class Run:
    """One fault run's world: the jobs, the provider, the queue, the kills."""

    def __init__(self, db: Any, table: str, rng: random.Random, faults: Faults):
        self.rng, self.faults, self.clock = rng, faults, Clock(START)
        self.injected: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()  # provider accepts by address
        self.published: Counter[str] = Counter()  # MessageSent by job key
        self.dead: dict[str, list[str]] = {}  # job key -> reasons
        self.redriven: list[str] = []
        self.queue: list[dict[str, Any]] = []
        self.kill_at: str | None = None
        self.db, self.table = db, table
        jobs = _KillingJobs(DynamoJobs(LossyDynamo(db, rng, faults.lost_reply, self.injected),
                                       table), self)
        settings = DeliverySettings(sender="Shop <news@shop.example>", shop_name="Shop",
                                    shop_url="https://shop.example",
                                    unsubscribe_url="https://shop.example/u",
                                    unsubscribe_secret=b"s")
        silent: Callable[..., None] = lambda *a, **k: None  # noqa: E731
        self.service = DeliveryService(
            jobs=jobs, recipients=_Recipients(self), catalogs=_Catalogs(),
            mailer=_Provider(self), texter=_Provider(self), dead_letters=_DeadLetters(self),
            outcomes=_Outcomes(self), settings=settings, clock=self.clock,
            count=lambda name, n: None, log=silent, error=silent)
        plain = DynamoJobs(LossyDynamo(db, rng, faults.lost_reply, self.injected), table)
        self.reconciler = ReconcileService(
            plain, Reporter(plain, _DeadLetters(self, kills=True), self.clock,
                            lambda name, n: None, silent), self.clock, lambda name, n: None)

    def checkpoint(self, point: str) -> None:
        if self.kill_at == point:
            self.injected[f"killed {point}"] += 1
            raise Kill(point)

    def add_jobs(self, n: int) -> list[MessageQueued]:
        jobs = []
        for i in range(n):
            job = MessageQueued(activity_id="a", element_id="mail", subject=f"customer:c{i}",
                                entry=1, at=START, channel="email", template="hello",
                                send_immediately=True, event_id=f"e{i}")
            self.db.put_item(TableName=self.table, Item={
                **keys.job_key(job.key), "kind": {"S": "job"}, "status": {"S": "queued"},
                "payload": {"S": job.model_dump_json()}})
            self.queue.append({"body": job.model_dump_json(), "receives": 0, "visible": START})
            if self.rng.random() < self.faults.twice:  # the copy arrives late, out of order
                late = START + timedelta(seconds=self.rng.uniform(0, 3600))
                self.queue.append({"body": job.model_dump_json(), "receives": 0,
                                   "visible": late})
            jobs.append(job)
        return jobs

    def step(self) -> None:
        visible = [m for m in self.queue if m["visible"] <= self.clock.at]
        if not visible:
            self.clock.at = min(m["visible"] for m in self.queue)
            return
        message = self.rng.choice(visible)
        message["receives"] += 1
        if message["receives"] > self.service.max_receives:  # SQS's redrive: no reason
            self.queue.remove(message)
            self.redriven.append(message["body"])
            return
        self.kill_at = (self.rng.choice(KILL_POINTS) if self.rng.random() < self.faults.kill
                        else None)
        message["visible"] = self.clock.at + VISIBILITY

        def later() -> None:
            message["visible"] = self.clock.at + timedelta(
                seconds=backoff_seconds(message["receives"]))

        try:
            self.service.handle_record(message["body"], message["receives"], later)
            self.queue.remove(message)
        except (Exception, Kill):
            pass  # the record comes back after its visibility timeout or back-off
        self.kill_at = None
        self.clock.at += timedelta(seconds=self.rng.uniform(0.1, 5))

    def reconcile(self) -> None:
        with contextlib.suppress(Kill):
            self.reconciler.run()

    def run(self, steps_between_reconciles: int = 50) -> None:
        """Until the queue is empty, reconciling every few steps; then until nothing is left."""
        steps = 0
        while self.queue:
            self.step()
            steps += 1
            if steps % steps_between_reconciles == 0:
                self.reconcile()
        for _ in range(10):  # an hour apart: every lease ran out, every kill retried
            self.clock.at += timedelta(hours=1)
            self.reconcile()

    def tally(self, jobs: list[MessageQueued]) -> Tally:
        rows = {i["pk"]["S"].removeprefix("JOB#"): i for i in
                self.db.scan(TableName=self.table)["Items"]}
        t = Tally(jobs=len(jobs), injected=self.injected,
                  redriven_without_reason=len(self.redriven))
        for job in jobs:
            accepted = self.accepted[_address(job.subject)]
            reasons = self.dead.get(job.key, [])
            row = rows[job.key]
            status = row["status"]["S"]
            outcome = row.get("outcome", {}).get("S")
            t.sent_once += accepted == 1
            t.sent_twice += accepted > 1
            t.dead_lettered += accepted == 0 and bool(reasons)
            t.unknown_dead_lettered += accepted == 1 and bool(reasons)
            t.lost += accepted == 0 and not reasons
            t.false_sent += accepted == 0 and self.published[job.key] > 0
            t.wrong_outcome += (status == "unknown" and outcome != "MessageOutcomeUnknown") or (
                accepted == 1 and outcome == "MessageSuppressed")
        return t


class _KillingJobs:
    """DynamoJobs with the function's death possible right after a claim or a mark."""

    def __init__(self, jobs: DynamoJobs, run: Run):
        self._jobs, self._run = jobs, run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)

    def claim(self, *args: Any) -> Any:
        claim = self._jobs.claim(*args)
        self._run.checkpoint("after_claim")
        return claim

    def mark_sent(self, *args: Any) -> bool:
        done = self._jobs.mark_sent(*args)
        self._run.checkpoint("after_mark")
        return done

    def release(self, job_key: str, attempt: str) -> None:
        if self._run.rng.random() < self._run.faults.release_refused:
            self._run.injected["give-back refused"] += 1
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "injected"}}, "UpdateItem")
        self._jobs.release(job_key, attempt)


class _Recipients:
    def __init__(self, run: Run):
        self._run = run

    def state(self, subject: str) -> CustomerState:
        self._run.checkpoint("before_claim")
        return CustomerState(subject=subject, profile=Profile(email=_address(subject)),
                             consent=ConsentState(email=True))

    def suppressed(self, address_hash: str) -> bool:
        return False


class _Catalogs:
    def catalog(self) -> Catalog:
        return Catalog(templates=[EmailTemplate(id="hello", channel="email", subject="Hello",
                                                      text="Hi")])


class _Provider:
    def __init__(self, run: Run):
        self._run = run

    def send(self, message: Any) -> str:
        run, r = self._run, self._run.rng.random()
        f = run.faults
        if r < f.unavailable:
            run.injected["provider unavailable"] += 1
            raise ProviderUnavailable("Throttling")
        if r < f.unavailable + f.rejected:
            run.injected["provider refused"] += 1
            raise ProviderRejected("MessageRejected")
        run.accepted[message.to] += 1
        run.checkpoint("after_accept")
        if r < f.unavailable + f.rejected + f.timeout:
            run.injected["provider reply lost (timeout after accept)"] += 1
            raise ReadTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com")
        return f"ses-{message.to}-{run.accepted[message.to]}"


class _Outcomes:
    def __init__(self, run: Run):
        self._run = run

    def sent(self, job: MessageQueued, provider: str, at: Any) -> None:
        self._run.published[job.key] += 1


class _DeadLetters:
    def __init__(self, run: Run, kills: bool = False):
        self._run, self._kills = run, kills

    def reject(self, body: str, event_id: str | None, reasons: list[str]) -> None:
        assert event_id is not None and all(reasons)
        self._run.dead.setdefault(event_id, []).extend(reasons)
        if self._kills and self._run.rng.random() < self._run.faults.reconcile_kill:
            self._run.injected["reconciliation killed after a dead-letter"] += 1
            raise Kill("after dead-letter")


def _address(subject: str) -> str:
    return f"{subject.partition(':')[2]}@example.com"


@contextmanager
def table() -> Iterator[tuple[Any, str]]:
    """moto's DynamoDB with the template's Table (keys and indexes)."""
    import boto3
    from dialogue.local.template import load
    from moto import mock_aws

    props = load(TEMPLATE)["Resources"]["Table"]["Properties"]
    with mock_aws():
        db = boto3.client("dynamodb", region_name="eu-west-1")
        db.create_table(TableName="jobs", BillingMode="PAY_PER_REQUEST",
                        KeySchema=props["KeySchema"],
                        AttributeDefinitions=props["AttributeDefinitions"],
                        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
        yield db, "jobs"


def measure(jobs: int = 1000, seed: int = 2026, faults: Faults | None = None) -> Tally:
    with table() as (db, name):
        run = Run(db, name, random.Random(seed), faults or Faults())
        queued = run.add_jobs(jobs)
        run.run()
        return run.tally(queued)


if __name__ == "__main__":  # python bench/delivery_faults.py [jobs]: section 4b alone
    import sys

    import run

    run.section_delivery_faults(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, {})
