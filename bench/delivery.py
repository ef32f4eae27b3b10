"""Delivery cost per message: botocore requests made inside send_message invocations on the
embedded AWS.

Activities send an e-mail (after a coupon) and an SMS, both `send_immediately`, for every order.
Customers register, then order; on_event writes the message jobs as outbox rows, the table
stream's dispatcher relays them to the messages queue, and `drain()` invokes send_message on
them. A request is counted only while LocalAws is calling the send_message handler, on the
thread that calls it (the counting hook is aws_calls', with its moto speed-up and one more
here): on_event's requests, the runtime's receive/delete calls and its relays are not counted.

The send rate limiter is per container, at MaxSendRate / SendConcurrency (14 / 2 = 7 messages a
second with the template's values): the bench raises MAX_SEND_RATE so that it measures the calls
and not the limiter's sleeps (the limiter is unit-tested: tests/unit/test_delivery.py).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aws_calls import CALLS, CountingAws, _hook_every_client, _share_stream_in_moto_transactions
from aws_calls import _write as write_docs
from dialogue import bootstrap
from dialogue.local import readback
from dialogue.local.runtime import LocalAws
from workload import SOURCE, utc_now

SEND_HANDLER = "send_message_handler.handler"
STACK = "dialogue-bench-delivery"  # not section 1's: moto keeps its resources in the process
MAX_SEND_RATE = "10000"  # messages a second, per account: the limiter never waits
TEMPLATES = Path(__file__).resolve().parents[1] / "examples" / "templates"
PROVIDER_OPS = ("SendEmail", "SendRawEmail", "Publish")  # sesv2 / ses, sns
DDB_WRITES = ("UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
DDB_READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")
OPERATIONS = ("GetItem", "UpdateItem", "PutItem", "TransactWriteItems", "SendEmail", "Publish",
              "PutEvents", "ListObjectsV2", "GetObject", "SendMessage")

THANKS_BY_MAIL = {
    "schema_version": 1, "id": "bench-thanks-email", "name": "Coupon and thanks by e-mail",
    "state": "active", "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "THANK-YOU-5", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "order-coupon",
         "send_immediately": True}]}
THANKS_BY_SMS = {
    "schema_version": 1, "id": "bench-thanks-sms", "name": "Thanks by SMS", "state": "active",
    "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "sms"},
        {"id": "sms", "type": "send_message", "channel": "sms", "template": "weekend-sale",
         "send_immediately": True}]}


class SendCountingAws(CountingAws):
    """The runtime with aws_calls' cached clients, counting inside send_message instead."""

    send_invocations = 0

    def invoke(self, function: Any, event: dict[str, Any]) -> set[str]:
        if function.handler == SEND_HANDLER:
            CALLS.counting, CALLS.thread = True, threading.get_ident()
            self.send_invocations += 1
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # every handler's logs and metrics
                return LocalAws.invoke(self, function, event)
        finally:
            CALLS.counting = False


@dataclass
class Result:
    customers: int
    sent: int  # jobs marked sent after the warm-up: the messages the figures are per
    calls: Counter[str]  # send_message's requests after the warm-up, catalog refreshes apart
    refreshes: int  # catalog refreshes after the cache time, and their requests
    refresh_ops: Counter[str]
    warmup: Counter[str]  # the cold container's first invocation(s): catalog load included
    warmup_sent: int
    catalog_ttl: float
    jobs: Counter[tuple[str, str]]  # (channel, status) of every job after the warm-up
    emails: int  # received by moto's SES after the warm-up
    sms: int  # received by moto's SNS
    outcomes: Counter[str]  # outcome events on the bus after the warm-up, by detail-type
    invocations: int  # of send_message, after the warm-up
    seconds: float
    dead_lettered: int
    queue_left: int

    def per_message(self, ops: tuple[str, ...]) -> float:
        return sum(self.calls[op] for op in ops) / self.sent if self.sent else float("nan")

    @property
    def total_per_message(self) -> float:
        return sum(self.calls.values()) / self.sent if self.sent else float("nan")

    def jobs_sent(self, channel: str) -> int:
        return self.jobs[(channel, "sent")]


def measure(customers: int = 200, batch: int = 25) -> Result:
    """One warm-up customer (the send_message container's first invocation: its catalog load
    counted apart), then `customers` more: all register, then all order, `batch` customers'
    events published and drained at a time, as a shop's traffic would arrive."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _hook_every_client()
    _share_stream_in_moto_transactions()
    _one_backup_per_table()
    with tempfile.TemporaryDirectory() as tmp:
        act_files = write_docs(Path(tmp) / "activities", [THANKS_BY_MAIL, THANKS_BY_SMS])
        aws = SendCountingAws(stack_name=STACK).start()
        try:
            sender = next(f for f in aws.s.functions if f.handler == SEND_HANDLER)
            # LocalAws.invoke puts the function's environment in os.environ before each call:
            # set it there, before the first invocation builds the service and its limiter.
            sender.environment["MAX_SEND_RATE"] = MAX_SEND_RATE
            ttl = float(sender.environment.get("CATALOG_CACHE_SECONDS", "60"))
            aws.upload_catalog(act_files, [], sorted(TEMPLATES.glob("*.json")))  # no segment used
            bootstrap.use_clock(bootstrap.SystemClock())
            now = utc_now()
            CALLS.reset()
            CALLS.ttl = None  # count every S3 request (section 1 leaves its cache time set)
            aws.put_events([_registered(0, now), _order(0, now)])
            aws.drain()
            warmup, warmup_jobs = CALLS.by_op, _jobs(aws)
            emails_before, sms_before = _provider_counts()
            _outcomes(aws)  # the warm-up's, taken off the tap queue
            outcomes: Counter[str] = Counter()
            CALLS.reset()
            CALLS.ttl = ttl  # from here, S3 requests after the cache time count as a refresh
            aws.send_invocations = 0
            started = time.monotonic()
            people = range(1, customers + 1)
            for make in (_registered, _order):
                for i in range(0, customers, batch):
                    aws.put_events([make(n, now) for n in people[i:i + batch]])
                    aws.drain()
                    outcomes += _outcomes(aws)  # keeps the tap queue short (moto scans it)
            seconds = time.monotonic() - started
            jobs = _jobs(aws) - warmup_jobs
            emails, sms = _provider_counts()
            emails, sms = emails - emails_before, sms - sms_before
            dead = len(readback.take_queue(aws, "MessagesDeadLetterQueue"))
            left = _depth(aws, sender.queue_url)
        finally:
            aws.stop()
    return Result(customers, jobs[("email", "sent")] + jobs[("sms", "sent")], CALLS.by_op,
                  CALLS.refreshes, CALLS.refresh_ops, warmup,
                  warmup_jobs[("email", "sent")] + warmup_jobs[("sms", "sent")], ttl, jobs,
                  emails, sms, outcomes, aws.send_invocations, seconds, dead, left)


def _one_backup_per_table() -> None:
    """moto's TransactWriteItems deep-copies the whole table once per item of the transaction
    (an order here writes six: the state, a coupon, two jobs, two activity counters), all before
    it writes anything: six identical copies of a table that grows with the run. Copying it once
    per transaction keeps the same backup; aws_calls' stream sharing keeps each copy small."""
    with contextlib.suppress(ImportError):
        from moto.dynamodb import models
        from moto.dynamodb.models.table import Table

        original = models.DynamoDBBackend.transact_write_items
        if getattr(original, "_bench_once", False):
            return
        real_copy = models.copy

        class _OncePerTable:
            def __init__(self) -> None:
                self.copies: dict[int, Any] = {}

            def __getattr__(self, name: str) -> Any:
                return getattr(real_copy, name)

            def deepcopy(self, obj: Any, *args: Any) -> Any:
                if not isinstance(obj, Table):
                    return real_copy.deepcopy(obj, *args)
                if id(obj) not in self.copies:
                    self.copies[id(obj)] = real_copy.deepcopy(obj, *args)
                return self.copies[id(obj)]

        @functools.wraps(original)
        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            models.copy = _OncePerTable()  # type: ignore[assignment]
            try:
                return original(self, transact_items)
            finally:
                models.copy = real_copy

        transact_write_items._bench_once = True  # type: ignore[attr-defined]
        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _registered(n: int, now: datetime) -> dict[str, Any]:
    return _envelope("CustomerRegistered", n, now, {
        "profile": {"first_name": f"Client{n}", "email": f"client{n}@example.com",
                    "phone": f"+3361234{n:04d}", "country": "FR"},
        "consent": {"email": True, "sms": True, "tracking": True}})


def _order(n: int, now: datetime) -> dict[str, Any]:
    return _envelope("OrderPlaced", n, now, {
        "order_id": f"o-{n}", "total": "40",
        "lines": [{"product_id": "p1", "name": "Ski wax", "unit_price": "40",
                   "categories": ["Ski"]}]})


def _envelope(detail_type: str, n: int, now: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    when = now.isoformat()
    return {"source": SOURCE, "detail-type": detail_type, "time": when,
            "detail": {"event_id": f"{detail_type}-{n}", "occurred_at": when,
                       "customer_id": f"client-{n}", **detail}}


def _outcomes(aws: LocalAws) -> Counter[str]:
    """MessageSent, MessageSuppressed, CouponIssued... as the shop's own rule receives them."""
    return Counter(o.get("detail-type") for o in readback.outcome_events(aws))


def _jobs(aws: LocalAws) -> Counter[tuple[str, str]]:
    return Counter((j["channel"], j["status"]) for j in readback.message_jobs(aws))


def _provider_counts() -> tuple[int, int]:
    """Messages moto's SES and SNS hold (they are the process's, not the stack's)."""
    return len(readback.sent_emails(None)), len(readback.sent_sms(None))  # type: ignore[arg-type]


def _depth(aws: LocalAws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                      "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attrs.values())
