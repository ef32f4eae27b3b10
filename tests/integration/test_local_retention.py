"""The embedded AWS keeps a bounded amount per event (local/retention.py): stream records are
released once the pipes' relay has read them, shard iterators and deleted receipt handles are
bounded, so a long dry run's memory grows with its customers, not with its events."""

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
from dialogue.local import retention
from dialogue.local.demo import SimulatedClock
from dialogue.local.runtime import LocalAws
from dialogue.local.template import ACCOUNT, REGION

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
THANKS = {  # an order: a coupon and an e-mail job (stream → outbox pipe → messages queue)
    "id": "thanks", "name": "Thanks for your order", "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "THANK-YOU-5", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "order-coupon",
         "reply_to": "service@shop.example", "send_immediately": True}]}


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = LocalAws().start()
    folder = tmp_path_factory.mktemp("catalog")
    (folder / "thanks.json").write_text(json.dumps(THANKS))
    runtime.upload_catalog([folder / "thanks.json"],
                           sorted((ROOT / "examples" / "segments").glob("*.json")),
                           sorted((ROOT / "examples" / "templates").glob("*")))
    bootstrap.use_clock(SimulatedClock(NOW))
    yield runtime
    bootstrap.use_clock(bootstrap.SystemClock())
    runtime.stop()


def orders(aws: LocalAws, customers: int, each: int) -> None:
    """`each` orders per customer (a registration first), published and delivered."""
    events, bus = aws.client("events"), aws.s.name("EventBus")
    for _ in range(customers):
        who = f"r{uuid.uuid4().hex[:8]}"
        entries = [("CustomerRegistered", {"profile": {"email": f"{who}@example.com"},
                                           "consent": {"email": True}})]
        entries += [("OrderPlaced", {"order_id": f"{who}-{k}", "total": "40", "lines": [
            {"product_id": "p1", "unit_price": "40", "categories": ["Ski"]}]})
            for k in range(each)]
        for kind, detail in entries:
            body = {"event_id": str(uuid.uuid4()), "occurred_at": NOW.isoformat(),
                    "customer_id": who, **detail}
            events.put_events(Entries=[{"Source": "shop", "DetailType": kind, "EventBusName": bus,
                                        "Detail": json.dumps(body), "Time": NOW}])
        with contextlib.redirect_stdout(io.StringIO()):
            aws.drain()


def retained(aws: LocalAws) -> dict[str, int]:
    """What moto holds that grows with events: stream records, shard iterators, receipt
    handles of deleted messages; and the e-mails SES accepted (the run's outcome). The stack's
    tables only: moto's backends are the process's, other tests' tables live there too."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodbstreams.models import dynamodbstreams_backends
    from moto.ses.models import ses_backends
    from moto.sqs.models import sqs_backends

    names = {aws.s.name("Table"), aws.s.name("CustomersTable")}
    tables = [t for n, t in dynamodb_backends[ACCOUNT][REGION].tables.items() if n in names]
    queues = sqs_backends[ACCOUNT][REGION].queues.values()
    return {
        "stream records": sum(len(t.stream_shard.items) for t in tables if t.stream_shard),
        "shard iterators": len(dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators),
        "deleted handles": sum(len(q.deleted_messages) for q in queues),
        "e-mails": sum(len(ses_backends[ACCOUNT][r].sent_messages)
                       for r in {"us-east-1", REGION}),
    }


def test_what_the_embedded_aws_keeps_does_not_grow_with_events(
        aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "ITERATORS", 30)
    monkeypatch.setattr(retention, "DELETED_HANDLES", 20)
    orders(aws, customers=3, each=2)
    first = retained(aws)
    orders(aws, customers=6, each=2)
    second = retained(aws)
    assert second["e-mails"] - first["e-mails"] == 6 * 2  # the work was done: one mail an order
    assert first["stream records"] == second["stream records"] == 0  # all read: all released
    assert second["shard iterators"] <= 30
    queues_with_deletes = sum(1 for n in _deleted_per_queue() if n)
    assert second["deleted handles"] <= 20 * queues_with_deletes


def test_a_stream_read_after_release_goes_on_where_it_stopped(aws: LocalAws) -> None:
    """The relay keeps its position across releases: every new record is delivered once."""
    before = retained(aws)["e-mails"]
    for _ in range(2):
        orders(aws, customers=1, each=2)
    assert retained(aws)["e-mails"] - before == 2 * 2


def _deleted_per_queue() -> list[int]:
    from moto.sqs.models import sqs_backends

    return [len(q.deleted_messages) for q in sqs_backends[ACCOUNT][REGION].queues.values()]


def test_trim_keeps_the_numbers_of_the_records_it_keeps() -> None:
    shard: Any = type("Shard", (), {})()
    shard.starting_sequence_number, shard.items = 100, ["a", "b", "c", "d"]
    assert retention.trim(shard, 101) == 2
    assert (shard.starting_sequence_number, shard.items) == (102, ["c", "d"])
    assert retention.trim(shard, 50) == 0  # already released
    assert retention.trim(shard, 999) == 2 and shard.items == []
    assert shard.starting_sequence_number == 104  # the next record is numbered 104, as before


def test_a_simulation_reads_the_outcome_tap_as_it_goes_and_counts_every_outcome(
        aws: LocalAws) -> None:
    """The shop's consumer of the outcome tap reads it every simulated day (SQS keeps a message
    4 days by default, moto for ever): the tap does not hold a month of outcomes, and the dry
    run's summary still counts each one."""
    from dialogue.local import dryrun, readback
    from dialogue.local.simulate import Simulation

    readback.outcome_events(aws)  # what earlier tests left on the tap
    start, who = datetime(2026, 12, 7, tzinfo=UTC), f"s{uuid.uuid4().hex[:8]}"
    events = [_event("CustomerRegistered", who, start.replace(hour=8), {
        "profile": {"email": f"{who}@example.com"}, "consent": {"email": True}})]
    events += [_event("OrderPlaced", who, start.replace(day=7 + day, hour=10), {
        "order_id": f"{who}-{day}", "total": "40",
        "lines": [{"product_id": "p1", "unit_price": "40", "categories": ["Ski"]}]})
        for day in range(3)]
    simulation = Simulation(aws, SimulatedClock(start))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            simulation.run(events, start, 3)
    finally:
        bootstrap.use_clock(SimulatedClock(NOW))
    assert simulation.outcomes["MessageSent"] == 3  # one thank-you a day, each counted
    assert readback.outcome_events(aws) == []  # and released: nothing left on the tap
    assert dryrun.summary(aws, simulation.outcomes)["outcome_events"]["MessageSent"] == 3


def _event(kind: str, who: str, at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    when = at.isoformat().replace("+00:00", "Z")
    return {"version": "0", "id": str(uuid.uuid4()), "source": "shop", "detail-type": kind,
            "time": when, "detail": {"event_id": str(uuid.uuid4()), "customer_id": who,
                                     "occurred_at": when, **detail}}


def test_the_simulators_release_lookup_reads_the_scheduled_jobs_not_the_table(
        aws: LocalAws) -> None:
    """Before each step the simulator asks when the next parked message is due: a scan of the
    sparse release index, whose cost follows the scheduled jobs, not the table's rows (which
    grow with every event of a month)."""
    from dialogue.local import readback

    orders(aws, customers=2, each=1)  # sent e-mails: job rows, none scheduled
    ddb, scanned = aws.client("dynamodb"), []
    scan = ddb.scan

    def counting(**kwargs: Any) -> Any:
        page = scan(**kwargs)
        scanned.append(page["ScannedCount"])
        return page

    ddb.scan = counting
    try:
        jobs = readback.scheduled_jobs(aws)
    finally:
        del ddb.scan
    assert sum(scanned) == len(jobs)  # only the index's items were read


def test_an_idle_round_makes_no_aws_call_and_the_next_write_is_delivered(aws: LocalAws) -> None:
    """A delivery round asks moto's backends in-process whether a queue has a receivable
    message or a stream a record after the relay's last (local/idle.py): once everything is
    delivered, a round receives from no queue and reads no stream; a new write is still read
    and delivered in the next round, and the records read are still released."""
    orders(aws, customers=1, each=1)
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name)

    clients = [aws.client("sqs"), aws.client("dynamodbstreams")]
    for client in clients:
        client.meta.events.register("before-call", record)
    try:
        assert aws.step() == 0
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", record)
    assert calls == []  # no ReceiveMessage; no DescribeStream, GetShardIterator, GetRecords
    before = retained(aws)["e-mails"]
    orders(aws, customers=1, each=1)
    assert retained(aws)["e-mails"] - before == 1
    assert retained(aws)["stream records"] == 0


def test_a_queue_is_skipped_only_when_a_receive_would_return_nothing(aws: LocalAws) -> None:
    """Delayed and in-flight messages are not receivable (SQS's delay queues and visibility
    timeout); a visible one is, and so is an in-flight one made visible again."""
    from dialogue.local import idle

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"idle-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    assert not idle.queue_has_receivable(url)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert not idle.queue_has_receivable(url)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    sqs.send_message(QueueUrl=url, MessageBody="now")
    assert idle.queue_has_receivable(url)
    handle = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"][0][
        "ReceiptHandle"]
    assert not idle.queue_has_receivable(url)  # in flight
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert idle.queue_has_receivable(url)
    assert idle.queue_has_receivable("http://elsewhere.example/1/not-a-moto-queue")  # maybe

