"""LocalAws: a moto server started and stopped by this process, the template's stack on it, and
the deliveries AWS would make (SQS → Lambda, DynamoDB stream → Pipe → SQS) done in-process."""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialogue import bootstrap
from dialogue.local import stack as stacks
from dialogue.local.template import ACCOUNT, REGION, Resolver, load

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "infra" / "template.yaml"


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class LocalAws:
    def __init__(self, template: Path = TEMPLATE, stack_name: str = "dialogue-local",
                 port: int = 0, parameters: dict[str, str] | None = None):
        self.template_path, self.stack_name = template, stack_name
        self.port = port or _free_port()
        self.parameters = parameters or {}
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self.stack: stacks.Stack | None = None
        self.outcomes_tap_url = ""
        self.invocations = 0

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalAws:
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint, "MOTO_PORT": str(self.port),
            "POWERTOOLS_METRICS_NAMESPACE": "Dialogue", "POWERTOOLS_SERVICE_NAME": "dialogue",
        })
        os.environ.pop("AWS_PROFILE", None)
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.create_stack()
        return self

    def create_stack(self) -> None:
        resolver = Resolver(load(self.template_path), self.stack_name, self.parameters)
        self.stack = stacks.create(self.session(), resolver, self.template_path.parent)
        for function in self.stack.functions:
            os.environ.update(function.environment)
            sender = function.environment.get("SENDER")
            if sender:  # SES sends only from verified identities
                domain = sender.rsplit("@", 1)[-1].strip("> ")
                self.client("ses").verify_domain_identity(Domain=domain)
        self._tap_outcomes()
        bootstrap.reset()

    def _tap_outcomes(self) -> None:
        """A rule of the shop's own, as it would have: dialogue's outcome events to a queue
        the demo and the tests read (not part of the template)."""
        sqs, events = self.client("sqs"), self.client("events")
        self.outcomes_tap_url = sqs.create_queue(QueueName=f"{self.stack_name}-outcomes-tap")[
            "QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.outcomes_tap_url,
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.s.name("EventBus")
        events.put_rule(Name="outcomes-tap", EventBusName=bus,
                        EventPattern=json.dumps({"source": ["dialogue"]}))
        events.put_targets(Rule="outcomes-tap", EventBusName=bus,
                           Targets=[{"Id": "tap", "Arn": arn}])

    def reset(self) -> None:
        """A fresh, empty stack (tests): moto forgets everything, the stack is created again."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset",
                                                      method="POST")).read()
        self.create_stack()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def session(self) -> Any:
        import boto3

        return boto3.session.Session(region_name=REGION)

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint)

    @property
    def s(self) -> stacks.Stack:
        assert self.stack is not None, "start() first"
        return self.stack

    # --- catalog and events ----------------------------------------------------------------
    def upload_catalog(self, activities: list[Path], segments: list[Path],
                       templates: list[Path] = ()) -> None:  # type: ignore[assignment]
        s3, bucket = self.client("s3"), self.s.name("CatalogBucket")
        for prefix, files in (("activities/", activities), ("segments/", segments),
                              ("templates/", templates)):
            for path in files:
                s3.put_object(Bucket=bucket, Key=prefix + path.name, Body=path.read_bytes())
        bootstrap.reset()  # a new catalog is read at once, not after the cache time

    def put_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Publish EventBridge-shaped events to the stack's bus, as a shop would."""
        client, bus = self.client("events"), self.s.name("EventBus")
        entries = [{"Source": e["source"], "DetailType": e["detail-type"],
                    "Detail": json.dumps(e["detail"]), "EventBusName": bus,
                    **({"Time": e["time"]} if "time" in e else {})} for e in events]
        results = []
        for i in range(0, len(entries), 10):
            results += client.put_events(Entries=entries[i:i + 10])["Entries"]
        return results

    # --- deliveries --------------------------------------------------------------------------
    def drain(self, max_rounds: int = 1000) -> int:
        """Deliver until every queue with a consumer and every pipe is empty."""
        total = 0
        for _ in range(max_rounds):
            moved = sum(self._poll(f) for f in self.s.functions if f.queue_url)
            moved += sum(self._relay(p) for p in self.s.pipes)
            total += moved
            if not moved:
                return total
        raise RuntimeError(f"still delivering after {max_rounds} rounds")

    def run_schedules(self) -> int:
        """Run every function the template puts on a schedule once (moto never fires them),
        then deliver what they started."""
        for function in self.s.functions:
            if function.schedule:
                self.invoke(function, {"source": "aws.events", "detail-type": "Scheduled Event",
                                       "detail": {}})
        return self.drain()

    def _poll(self, function: stacks.Function) -> int:
        sqs = self.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=function.queue_url, MaxNumberOfMessages=min(function.batch_size, 10),
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        records = [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": function.queue_arn, "awsRegion": REGION,
        } for m in messages]
        failed = self.invoke(function, {"Records": records})
        for m in messages:
            if m["MessageId"] in failed:  # visible again at once: retried, then dead-lettered
                sqs.change_message_visibility(QueueUrl=function.queue_url,
                                              ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=function.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def invoke(self, function: stacks.Function, event: dict[str, Any]) -> set[str]:
        """Call the real handler in-process; return the ids of failed records."""
        os.environ.update(function.environment)
        if str(function.code_dir) not in sys.path:
            sys.path.insert(0, str(function.code_dir))
        module_name, attr = function.handler.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attr)
        context = LambdaContext(function.logical, str(uuid.uuid4()),
                                invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:"
                                                     f"function:{function.logical}")
        self.invocations += 1
        try:
            response = handler(event, context) or {}
        except Exception:  # the whole batch failed: every record comes back
            if "Records" not in event:
                raise
            return {r["messageId"] for r in event["Records"]}
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}

    def _relay(self, pipe: stacks.Pipe) -> int:
        from moto.events.models import EventPattern

        streams = self.client("dynamodbstreams")
        patterns = [EventPattern.load(p) for p in pipe.patterns]
        shards = streams.describe_stream(StreamArn=pipe.stream_arn)["StreamDescription"]["Shards"]
        moved = 0
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = pipe.iterators.get(shard_id) or streams.get_shard_iterator(
                StreamArn=pipe.stream_arn, ShardId=shard_id,
                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            page = streams.get_records(ShardIterator=iterator)
            pipe.iterators[shard_id] = page.get("NextShardIterator") or iterator
            for record in page.get("Records", []):
                plain = json.loads(stacks.record_json(record))
                if not patterns or any(p.matches_event(plain) for p in patterns):
                    self._deliver(pipe, plain)
                    moved += 1
        return moved


    def _deliver(self, pipe: stacks.Pipe, record: dict[str, Any]) -> None:
        if pipe.target_url is not None:
            self.client("sqs").send_message(QueueUrl=pipe.target_url,
                                            MessageBody=json.dumps(record))
            return
        self.client("events").put_events(Entries=[{
            "EventBusName": pipe.target_bus, "Source": pipe.source or "pipe",
            "DetailType": _dynamic(pipe.detail_type or "", record), "Detail": json.dumps(record),
        }])


def _dynamic(value: str, record: dict[str, Any]) -> str:
    """A Pipes dynamic path parameter ("$.a.b") read from the record; other values as they are."""
    if not value.startswith("$."):
        return value
    node: Any = record
    for part in value[2:].split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return str(node)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
