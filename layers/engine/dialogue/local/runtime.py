"""LocalAws: a moto server started and stopped by this process, the template's stack on it, and
the deliveries AWS would make (SQS → Lambda, SQS → Pipe → SQS FIFO, DynamoDB stream → Lambda)
done in-process, as AWS documents them (docs/aws-behaviours.md)."""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialogue import bootstrap
from dialogue.local import stack as stacks
from dialogue.local import stepfunctions as sfn
from dialogue.local.template import ACCOUNT, REGION, Resolver, load
from dialogue.settings import BadSetting

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "infra" / "template.yaml"
LOCAL_PARAMETERS = {"DailyScanSegments": "2", "TimerShards": "2"}


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
        # Fewer shards than production: the same wiring, sized for a laptop's handful of customers.
        self.parameters = {**LOCAL_PARAMETERS, **(parameters or {})}
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self.stack: stacks.Stack | None = None
        self.outcomes_tap_url = ""
        self.invocations = 0
        self.waits = sfn.SimulatedWaits()  # state machines' waits follow the simulated clock
        self.router: sfn.LambdaRouter | None = None
        self.state_machines: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._environ: dict[str, str] | None = None
        self._stream_positions: dict[str, dict[str, str]] = {}  # stream → shard → last read
        self.message_groups: Counter[str] = Counter()  # FIFO groups the pipes sent to (demo)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalAws:
        self._environ = dict(os.environ)  # put back by stop(): the functions' settings leak here
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
        _serialise_dynamodb_writes()
        _rule_input_as_aws_sends_it()
        sfn.enable_execution(self.endpoint)  # before any function or state machine exists
        self.waits.install()
        self.router = sfn.route_lambda_invokes(self.call_function)
        try:
            self.create_stack()
        except Exception:  # a refused stack (the settings check): nothing left running
            self.stop()
            raise
        return self

    def create_stack(self) -> None:
        resolver = Resolver(load(self.template_path), self.stack_name, self.parameters)
        self._stream_positions = {}
        self.message_groups.clear()
        self.state_machines = sfn.create_state_machines(self.session(), resolver,
                                                        self.template_path.parent)
        if self.router is not None:
            self.router.names.update(sfn.lambda_names(resolver))
        self.stack = stacks.create(self.session(), resolver, self.template_path.parent)
        self._create_custom_resources(resolver)
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

        self.waits.cancel_all()
        self.waits.wait_idle()
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset",
                                                      method="POST")).read()
        self.create_stack()

    def stop(self) -> None:
        import logging

        logging.getLogger("moto").setLevel(logging.CRITICAL)  # cancelled waits are not news
        self.waits.cancel_all()
        self.waits.uninstall()
        if self.router is not None:
            self.router.uninstall()
            self.router = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._environ is not None:
            os.environ.clear()
            os.environ.update(self._environ)
            self._environ = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def session(self) -> Any:
        import boto3

        return boto3.session.Session(region_name=REGION)

    def client(self, service: str) -> Any:
        """One client per service (clients are thread-safe; making one costs milliseconds)."""
        if service not in self._clients:
            self._clients[service] = self.session().client(service, endpoint_url=self.endpoint)
        return self._clients[service]

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
        """Deliver until every queue with a consumer, every pipe and every stream is empty."""
        total = 0
        for _ in range(max_rounds):
            moved = self.step()
            total += moved
            if not moved:
                return total
        raise RuntimeError(f"still delivering after {max_rounds} rounds")

    def step(self) -> int:
        """One round of deliveries: each consumed queue polled once (one batch), each pipe and
        stream relayed. Returns how many messages or records moved."""
        moved = sum(self._poll(f) for f in self.s.functions if f.queue_url)
        return moved + self.pump_pipes() + self.relay_streams()

    def relay_streams(self) -> int:
        """Read each table stream once and hand its new records to their readers."""
        streams = {p.stream_arn for p in self.s.pipes if p.stream_arn} | {
            f.stream.stream_arn for f in self.s.functions if f.stream}
        return sum(self._relay(arn) for arn in sorted(streams))

    def pump_pipes(self) -> int:
        """Move one batch through each pipe with an SQS source (EventsPipe: the shop's events
        into their FIFO message groups)."""
        return sum(self._pump(p) for p in self.s.pipes if p.source_url)

    def run_schedules(self) -> int:
        """Run every function the template puts on a rate() schedule once (moto never fires
        them), then deliver what they started. Daily cron schedules run with `run_scheduled`."""
        for function in self.s.functions:
            if function.schedule and function.schedule.startswith("rate("):
                self.invoke(function, {"source": "aws.events", "detail-type": "Scheduled Event",
                                       "detail": {}})
        return self.drain()

    def run_scheduled(self, logical: str) -> int:
        """Run one scheduled function now (the daily check: `DailyCheckFunction`), then deliver
        what it started."""
        function = next(f for f in self.s.functions if f.logical == logical and f.schedule)
        self.invoke(function, {"source": "aws.scheduler", "detail": {}})
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

    def _create_custom_resources(self, resolver: Resolver) -> None:
        """Custom resources run as CloudFormation runs them: their function gets a Create
        request and answers on a presigned S3 URL; a FAILED answer stops the stack with its
        reason (the settings check refuses a SendTime before DailyCheckTime here too)."""
        custom = [(logical, resolver.resolve(spec.get("Properties", {})))
                  for logical, spec in resolver.resources.items()
                  if spec["Type"].startswith("Custom::")]
        if not custom:
            return
        s3, bucket = self.client("s3"), f"{resolver.stack}-cloudformation-answers".lower()
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for logical, properties in custom:
            token = properties.pop("ServiceToken")
            properties.pop("ServiceTimeout", None)  # CloudFormation's own, not the function's
            function = next(f for f in self.s.functions
                            if resolver.get_att(f.logical, "Arn") == token)
            key = f"{logical}/{uuid.uuid4()}"
            url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key},
                                            ExpiresIn=3600)
            self._call(function, {
                "RequestType": "Create", "ResponseURL": url, "StackId": resolver.stack,
                "RequestId": key, "ResourceType": resolver.resources[logical]["Type"],
                "LogicalResourceId": logical, "ResourceProperties": properties})
            answer = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if answer["Status"] != "SUCCESS":
                raise BadSetting(f"{logical}: {answer['Reason']}")

    def call_function(self, logical: str, event: dict[str, Any]) -> Any:
        """A direct Lambda invoke (a state machine's task): the real handler's answer."""
        function = next(f for f in self.s.functions if f.logical == logical)
        return self._call(function, event)

    def _call(self, function: stacks.Function, event: dict[str, Any]) -> Any:
        os.environ.update(function.environment)
        if str(function.code_dir) not in sys.path:
            sys.path.insert(0, str(function.code_dir))
        module_name, attr = function.handler.rsplit(".", 1)
        module = importlib.import_module(module_name)  # handler module names are unique
        context = LambdaContext(function.logical, str(uuid.uuid4()),
                                invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:"
                                                     f"function:{function.logical}")
        self.invocations += 1
        return getattr(module, attr)(event, context)

    def invoke(self, function: stacks.Function, event: dict[str, Any]) -> set[str]:
        """Call the real handler in-process; return the ids of failed records."""
        try:
            response = self._call(function, event) or {}
        except Exception:  # the whole batch failed: every record comes back
            if "Records" not in event:
                raise
            return {r["messageId"] for r in event["Records"]}
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}

    def _relay(self, stream_arn: str) -> int:
        """Read a table stream once: each record to every pipe whose filter it passes, and to
        every function mapped to the stream (in batches, as Lambda's event source mapping does).
        Each reader keeps its own position on AWS; here they advance together. The position is
        kept as the last sequence number read: moto replaces a table's stream shard when it
        rolls a cancelled transaction back, so an iterator kept across calls would go stale."""
        from moto.events.models import EventPattern

        pipes = [(p, [EventPattern.load(x) for x in p.patterns])
                 for p in self.s.pipes if p.stream_arn == stream_arn]
        readers = [(f, [EventPattern.load(x) for x in f.stream.patterns])
                   for f in self.s.functions if f.stream and f.stream.stream_arn == stream_arn]
        batches: dict[str, list[dict[str, Any]]] = {f.logical: [] for f, _ in readers}
        moved = 0
        for record in self._new_records(stream_arn):
            for pipe, patterns in pipes:
                if not patterns or any(p.matches_event(record) for p in patterns):
                    self._deliver(pipe, record)
                    moved += 1
            for function, patterns in readers:  # Lambda drops what no filter matches
                if not patterns or any(p.matches_event(record) for p in patterns):
                    batches[function.logical].append({**record, "eventSourceARN": stream_arn})
        for function, _ in readers:
            moved += self._invoke_stream(function, batches[function.logical])
        return moved

    def _new_records(self, stream_arn: str) -> list[Any]:  # moto's event type: any JSON
        streams = self.client("dynamodbstreams")
        read = self._stream_positions.setdefault(stream_arn, {})
        out = []
        for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            after = read.get(shard_id)
            iterator = streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id,
                **({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                   if after else {"ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator)
                records = page.get("Records", [])
                for record in records:
                    read[shard_id] = record["dynamodb"]["SequenceNumber"]
                    out.append(json.loads(stacks.record_json(record)))
                iterator = page.get("NextShardIterator") if records else None
        return out

    def _invoke_stream(self, function: stacks.Function, records: list[dict[str, Any]]) -> int:
        """Lambda's DynamoDB event source mapping: batches in order; a failed batch is retried
        from the lowest sequence number reported failed (the whole batch when the function
        raised), MaximumRetryAttempts times, then named on the OnFailure queue and skipped."""
        assert function.stream is not None
        size, start = max(function.batch_size, 1), 0
        while start < len(records):
            batch, retries = records[start:start + size], 0
            start += len(batch)
            while batch:
                failed = self._stream_failures(function, batch)
                if not failed:
                    break
                first = next((i for i, r in enumerate(batch)
                              if r["dynamodb"]["SequenceNumber"] in failed), 0)
                batch = batch[first:]
                retries += 1
                if 0 <= function.stream.max_retries < retries:
                    self._stream_dead_letter(function, batch, retries)
                    break
        return len(records)

    def _stream_failures(self, function: stacks.Function,
                         batch: list[dict[str, Any]]) -> set[str]:
        try:
            response = self._call(function, {"Records": batch}) or {}
        except Exception:  # the whole batch failed
            return {r["dynamodb"]["SequenceNumber"] for r in batch}
        if not (function.stream and function.stream.report_failures):
            return set()
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}

    def _stream_dead_letter(self, function: stacks.Function, batch: list[dict[str, Any]],
                            invokes: int) -> None:
        """The invocation record Lambda sends to an OnFailure SQS destination for a stream: the
        batch's shard and sequence numbers (not the records: they are read again from the
        stream while it keeps them, 24 hours)."""
        assert function.stream is not None
        if not function.stream.on_failure_url:
            return
        seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
        self.client("sqs").send_message(QueueUrl=function.stream.on_failure_url,
                                        MessageBody=json.dumps({
            "requestContext": {"functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
                                              f"{function.logical}",
                               "condition": "RetryAttemptsExhausted",
                               "approximateInvokeCount": invokes},
            "version": "1.0",
            "DDBStreamBatchInfo": {"startSequenceNumber": seqs[0], "endSequenceNumber": seqs[-1],
                                   "batchSize": len(batch),
                                   "streamArn": function.stream.stream_arn}}))

    def _pump(self, pipe: stacks.Pipe) -> int:
        """A pipe with an SQS source: each message (as Pipes' SQS record) through the filter to
        the target queue, its SqsQueueParameters resolved per message ("$.body.group" read from
        a JSON body; a static string kept as written). A message whose parameters do not resolve
        stays on the source queue: retried, then moved to its DLQ by the redrive policy."""
        from moto.events.models import EventPattern

        sqs, patterns = self.client("sqs"), [EventPattern.load(x) for x in pipe.patterns]
        messages = sqs.receive_message(
            QueueUrl=pipe.source_url, MaxNumberOfMessages=min(pipe.batch_size, 10),
            MessageSystemAttributeNames=["All"]).get("Messages", [])
        for m in messages:
            record: Any = {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                      "body": m["Body"], "attributes": m.get("Attributes", {}),
                      "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                      "eventSource": "aws:sqs", "eventSourceARN": pipe.source_arn,
                      "awsRegion": REGION}
            try:
                if not patterns or any(p.matches_event(record) for p in patterns):
                    params = {k: _dynamic(str(v), record) for k, v in pipe.target_sqs.items()}
                    sqs.send_message(QueueUrl=pipe.target_url, MessageBody=m["Body"], **params)
                    self.message_groups[params.get("MessageGroupId", "")] += 1
            except (KeyError, ValueError):
                sqs.change_message_visibility(QueueUrl=pipe.source_url,
                                              ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=0)
                continue
            sqs.delete_message(QueueUrl=pipe.source_url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def _deliver(self, pipe: stacks.Pipe, record: dict[str, Any]) -> None:
        if pipe.target_url is not None:
            params = {k: _dynamic(str(v), record) for k, v in pipe.target_sqs.items()}
            self.client("sqs").send_message(QueueUrl=pipe.target_url,
                                            MessageBody=json.dumps(record), **params)
            return
        self.client("events").put_events(Entries=[{
            "EventBusName": pipe.target_bus, "Source": pipe.source or "pipe",
            "DetailType": _dynamic(pipe.detail_type or "", record), "Detail": json.dumps(record),
        }])


_DYNAMODB_WRITES = threading.RLock()


def _serialise_dynamodb_writes() -> None:
    """moto rolls a cancelled transaction back by putting back a copy of the whole table taken
    before it, which loses what other threads wrote meanwhile (DynamoDB isolates transactions
    per item). The embedded AWS takes one DynamoDB write at a time, so concurrent writers (the
    wake and daily workers' threads) behave as on AWS: conflicts are reported, nothing is lost."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items",
                 "batch_write_item"):
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_serialised", False):
            continue

        def serialised(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _DYNAMODB_WRITES:
                return _method(self, *args, **kwargs)

        serialised._serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialised)


def _dynamic(value: str, record: dict[str, Any]) -> str:
    """A Pipes dynamic path parameter ("$.a.b") read from the record; other values as they are
    (a static string stays literal). As Pipes does for an SQS source, "$.body.x" reads into the
    body when it is valid JSON. A path that finds nothing raises KeyError."""
    if not value.startswith("$."):
        return value
    node: Any = record
    for part in value[2:].split("."):
        if isinstance(node, str):
            node = json.loads(node)  # ValueError: not JSON, the path cannot be read
        if not isinstance(node, dict) or node.get(part) is None:
            raise KeyError(f"{value}: nothing at {part!r}")
        node = node[part]
    return node if isinstance(node, str) else json.dumps(node)


def _rule_input_as_aws_sends_it() -> None:
    """moto's `<aws.events.event.json>` is its internal event (epoch `time`, an extra
    `ingestion-time`); EventBridge inserts the event as published: ISO `time`, no extra key."""
    from moto.events.utils import EventTemplateParser

    parse = EventTemplateParser.parse
    if getattr(parse, "_as_aws", False):
        return

    def as_aws(input_template: str, input_paths_map: dict[str, Any], event: Any) -> Any:
        if input_template and "<aws.events.event.json>" in input_template:
            published = {k: v for k, v in event.items() if k != "ingestion-time"}
            if isinstance(published.get("time"), (int, float)):
                published["time"] = datetime.fromtimestamp(published["time"], UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
            input_template = input_template.replace("<aws.events.event.json>",
                                                    json.dumps(published))
        return parse(input_template, input_paths_map, event)

    as_aws._as_aws = True  # type: ignore[attr-defined]
    EventTemplateParser.parse = staticmethod(as_aws)  # type: ignore[method-assign]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
