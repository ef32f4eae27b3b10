"""AWS calls per event: botocore requests made inside on_event invocations on the embedded AWS.

Every botocore client created in this process gets a `before-send` hook (fired once per HTTP
attempt, so a retry counts too), whichever session or module creates it. A request counts only
while LocalAws is calling the on_event handler, on the thread that calls it: the runtime's own
receive/delete calls (Lambda's event source mapping, on AWS) and its stream relay (the Pipe)
fall outside and are not counted.

Events are published and drained in small batches, as a shop's traffic would arrive, so that
the emulator's queues stay short (moto's SQS scans every queued message on each send and
receive). S3 requests made once the catalog cache time has run out since the last load are
counted apart as a TTL refresh: that is the cache doing its job, not a cache miss.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import botocore.session
from dialogue import bootstrap
from dialogue.local.runtime import LocalAws
from dialogues import activities, segments
from workload import EventMaker, utc_now

ON_EVENT_HANDLER = "on_event_handler.handler"
ACTION_KINDS = ("job", "coupon", "member")  # items a TransactWriteItems writes for an action
REFRESH_GAP = 1.0  # seconds: S3 requests this close to a refresh's first one belong to it


@dataclass
class Calls:
    """Requests seen inside on_event invocations, by operation."""

    by_op: Counter[str] = field(default_factory=Counter)
    refresh_ops: Counter[str] = field(default_factory=Counter)
    refreshes: int = 0
    transactions_with_action: int = 0
    counting: bool = False
    thread: int | None = None
    ttl: float | None = None  # the catalog cache time, once the catalog is loaded
    loaded_at: float = 0.0
    refresh_at: float = float("-inf")

    def mine(self) -> bool:
        return self.counting and threading.get_ident() == self.thread

    def on_send(self, event_name: str, **_: Any) -> None:
        """before-send.<service>.<Operation>: one HTTP attempt. Returns None (send it)."""
        if not self.mine():
            return
        service, op = event_name.split(".", 2)[1:]
        if service == "s3":
            now = time.monotonic()
            if self.ttl is None:
                self.loaded_at = now  # the first load: the cache time runs from its last request
            elif self._refreshing(now):
                self.refresh_ops[op] += 1
                return
        self.by_op[op] += 1

    def _refreshing(self, now: float) -> bool:
        """Is this S3 request part of a refresh that the cache time calls for?"""
        assert self.ttl is not None
        if now - self.refresh_at >= REFRESH_GAP:  # not part of the refresh under way
            if now - self.loaded_at < self.ttl:
                return False  # a request while the catalog is cached
            self.refreshes += 1
            self.refresh_at = now
        self.loaded_at = now
        return True

    def on_params(self, params: dict[str, Any], **_: Any) -> None:
        """before-parameter-build.dynamodb.TransactWriteItems: did this event act?"""
        if not self.mine():
            return
        for item in params.get("TransactItems", []):
            kind = item.get("Put", {}).get("Item", {}).get("kind", {}).get("S")
            if kind in ACTION_KINDS or "Delete" in item:
                self.transactions_with_action += 1
                return

    def reset(self) -> None:
        self.by_op, self.refresh_ops, self.refreshes = Counter(), Counter(), 0
        self.transactions_with_action = 0


CALLS = Calls()


class CountingAws(LocalAws):
    """LocalAws that counts inside on_event invocations and reuses its own clients."""

    @functools.cache  # noqa: B019 - one runtime per run; the runtime's clients, not the handler's
    def client(self, service: str) -> Any:
        return super().client(service)

    def invoke(self, function: Any, event: dict[str, Any]) -> set[str]:
        with contextlib.redirect_stdout(io.StringIO()):  # every handler's logs and metrics
            if function.handler != ON_EVENT_HANDLER:
                return super().invoke(function, event)
            CALLS.counting, CALLS.thread = True, threading.get_ident()
            try:
                return super().invoke(function, event)
            finally:
                CALLS.counting = False


@dataclass
class Result:
    events: int
    activities: int
    warmup: Counter[str]
    steady: Counter[str]
    refreshes: int
    refresh_ops: Counter[str]
    with_action: int
    seconds: float
    catalog_ttl: float
    queue_left: int

    @property
    def per_event(self) -> float:
        """Calls per event while the catalog is cached."""
        return sum(self.steady.values()) / self.events

    @property
    def per_event_with_refreshes(self) -> float:
        return (sum(self.steady.values()) + sum(self.refresh_ops.values())) / self.events


def measure(n_events: int = 1000, n_activities: int = 20, customers: int = 150,
            guests: int = 30, batch: int = 50, cache_seconds: float | None = None,
            with_controls: bool = True) -> Result:
    """One warm-up event (the container's first: its catalog load is counted), then
    `n_events` more, published and drained `batch` at a time. `cache_seconds` overrides the
    template's CATALOG_CACHE_SECONDS (to see TTL refreshes in a short run). `with_controls`:
    the activities carry their journey controls (the same events either way: same seed)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _hook_every_client()
    _share_stream_in_moto_transactions()
    with tempfile.TemporaryDirectory() as tmp:
        act_files = _write(Path(tmp) / "activities", activities(n_activities, with_controls))
        seg_files = _write(Path(tmp) / "segments", segments(n_activities))
        aws = CountingAws().start()
        try:
            function = next(f for f in aws.s.functions if f.handler == ON_EVENT_HANDLER)
            if cache_seconds is not None:
                function.environment["CATALOG_CACHE_SECONDS"] = f"{cache_seconds:g}"
            ttl = float(function.environment.get("CATALOG_CACHE_SECONDS", "60"))
            aws.upload_catalog(act_files, seg_files)
            bootstrap.use_clock(bootstrap.SystemClock())
            maker = EventMaker(seed=2024, start=utc_now() - timedelta(hours=6))
            CALLS.reset()
            CALLS.ttl = None
            aws.put_events(maker.stream(1, customers))
            aws.drain()
            warmup = CALLS.by_op
            CALLS.reset()
            CALLS.ttl, started = ttl, CALLS.loaded_at
            stream = maker.stream(n_events, customers, guests)
            for i in range(0, n_events, batch):
                aws.put_events(stream[i:i + batch])
                aws.drain()
            seconds = time.monotonic() - started
            left = _queue_depth(aws, function)
        finally:
            _forget(aws)
            aws.stop()
    return Result(n_events, n_activities, warmup, CALLS.by_op, CALLS.refreshes,
                  CALLS.refresh_ops, CALLS.transactions_with_action, seconds, ttl, left)


def _hook_every_client() -> None:
    """Register the counters on each client botocore creates from now on (any session)."""
    create = botocore.session.Session.create_client
    if getattr(create, "_bench_hooked", False):
        return

    @functools.wraps(create)
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = create(self, *args, **kwargs)
        client.meta.events.register("before-send", CALLS.on_send)
        client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems",
                                    CALLS.on_params)
        return client

    create_client._bench_hooked = True  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def _share_stream_in_moto_transactions() -> None:
    """moto backs up every table a TransactWriteItems touches with a deep copy, its stream
    records included, once per item: a cost that grows with every write of the run (185 ms a
    transaction after 900 events). Sharing the stream shard in that copy keeps the emulator's
    time flat; the requests, which are what is counted, are the same. (On a cancelled
    transaction moto would now keep the stream records of the items written before the
    failure; this run has no conflicts.)"""
    with contextlib.suppress(ImportError):
        from moto.dynamodb.models.table import StreamShard

        StreamShard.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]


def _forget(aws: LocalAws) -> None:
    """moto's backends belong to the process, not to the server: empty them, so that a second
    run in this process (without, then with the controls) creates its stack afresh."""
    import urllib.request

    with contextlib.suppress(OSError):
        urllib.request.urlopen(urllib.request.Request(f"{aws.endpoint}/moto-api/reset",
                                                      method="POST")).read()


def _queue_depth(aws: LocalAws, function: Any) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=function.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _write(folder: Path, docs: list[dict[str, Any]]) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for doc in docs:
        path = folder / f"{doc['id']}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths

