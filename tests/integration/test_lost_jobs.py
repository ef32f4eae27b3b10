"""A message job whose queue message never reached send_message (the stream relay lost it, a
release missed it) is not left queued for ever: the reconciliation puts it back on the messages
queue, and after a few tries dead-letters it with why."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.aws.jobs import DynamoJobs
from dialogue.delivery.jobs import JobStatus
from dialogue.delivery.reconcile import ReconcileService, Reporter
from dialogue.model.effects import MessageQueued

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import delivery_faults as world  # noqa: E402

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = AT

    def now(self) -> datetime:
        return self.at


class Queue:
    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.dead: list[tuple[str, list[str]]] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies += bodies

    def reject(self, body: str, event_id: str | None, reasons: list[str]) -> None:
        self.dead.append((str(event_id), reasons))


@pytest.fixture
def parts() -> Iterator[tuple[Any, DynamoJobs, ReconcileService, Queue, Clock, MessageQueued]]:
    with world.table() as (db, name):
        job = MessageQueued(activity_id="a", element_id="mail", subject="customer:c1", entry=1,
                            at=AT, channel="email", template="hello", event_id="e1")
        store = DynamoCustomerStore(db, name, segment_shards=2, timer_shards=2)
        store.commit(store.load("customer:c1"), [job])  # writes the job row as on_event does
        jobs, queue, clock = DynamoJobs(db, name), Queue(), Clock()
        reporter = Reporter(jobs, queue, clock, lambda name, n: None, lambda *a, **k: None)
        yield db, jobs, ReconcileService(jobs, reporter, clock, lambda name, n: None,
                                         requeue=queue), queue, clock, job


def status(db: Any, key: str) -> str:
    item = db.get_item(TableName="jobs", Key={"pk": {"S": f"JOB#{key}"},
                                             "sk": {"S": "JOB"}})["Item"]
    return str(item["status"]["S"])


def test_a_queued_job_nobody_handled_goes_back_on_the_queue_then_is_dead_lettered(
        parts: Any) -> None:
    db, jobs, reconcile, queue, clock, job = parts
    clock.at = AT + timedelta(minutes=30)
    reconcile.run()
    assert queue.bodies == []  # in time: send_message may still be on its way

    for hour in (1, 2, 3):  # lost each time; looked at again an hour after each return
        clock.at = AT + timedelta(hours=hour, minutes=10 * hour)
        reconcile.run()
    assert [MessageQueued.model_validate_json(b) for b in queue.bodies] == [job] * 3
    clock.at = AT + timedelta(hours=4, minutes=40)
    reconcile.run()

    assert status(db, job.key) == "failed"
    assert [(k, r[0][:35]) for k, r in queue.dead] == [
        (job.key, "never handled: still queued after 3")]


def test_a_job_handled_in_time_is_not_requeued(parts: Any) -> None:
    db, jobs, reconcile, queue, clock, job = parts
    assert jobs.finish(job.key, JobStatus.SUPPRESSED, AT, "no consent")
    clock.at = AT + timedelta(hours=5)

    reconcile.run()

    assert queue.bodies == [] and queue.dead == []


def test_a_scheduled_job_is_watched_from_an_hour_after_its_send_time(parts: Any) -> None:
    db, jobs, reconcile, queue, clock, job = parts
    assert jobs.schedule(job.key, AT, AT + timedelta(hours=23))
    clock.at = AT + timedelta(hours=20)
    reconcile.run()
    assert queue.bodies == []

    clock.at = AT + timedelta(hours=24, minutes=5)  # the release missed it
    reconcile.run()

    assert [MessageQueued.model_validate_json(b) for b in queue.bodies] == [job]
