"""LocalAws: a moto server started and stopped by this process, the template's stack on it, and
the deliveries AWS would make (SQS → Lambda, SQS → Pipe → SQS FIFO, DynamoDB stream → Lambda)
done in-process, as AWS documents them (docs/aws-behaviours.md)."""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialogue import bootstrap
from dialogue.local import iam, idle, inprocess, sam, timings
from dialogue.local import stack as stacks
from dialogue.local import stepfunctions as sfn
from dialogue.local.relays import Relays, rule_input_as_aws_sends_it
from dialogue.local.template import ACCOUNT, REGION, Resolver
from dialogue.settings import BadSetting

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "infra" / "template.yaml"
LOCAL_PARAMETERS = {"DailyScanSegments": "2", "TimerShards": "2",  # the template requires these:
                    "Sender": "Shop <news@shop.example>", "SenderIdentity": "shop.example",
                    "ShopUrl": "https://shop.example",
                    "UnsubscribeUrl": "https://shop.example/unsubscribe"}


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_ms: int = 30_000  # the function's Timeout

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


class LocalAws:
    def __init__(self, template: Path = TEMPLATE, stack_name: str = "dialogue-local",
                 port: int = 0, parameters: dict[str, str] | None = None,
                 transport: str | None = None):
        self.template_path, self.stack_name = template, stack_name
        # This process's own requests: answered in-process, or over HTTP (local/inprocess.py).
        self.transport = inprocess.transport(transport)
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
        self.relays = Relays(self)  # what AWS moves between resources and moto does not

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
        if self.transport == "inprocess":
            inprocess.serve(self.port)
        _serialise_dynamodb_writes()
        rule_input_as_aws_sends_it()
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
        resolver = Resolver(sam.expand(self.template_path, self.parameters), self.stack_name,
                            self.parameters)  # the template as CloudFormation receives it
        self.relays = Relays(self)
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
        inprocess.release(self.port)
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
        stream relayed; a queue or stream with nothing to move is skipped without a call
        (local/idle.py). Returns how many messages or records moved."""
        moved = sum(self._poll(f) for f in self.s.functions if f.queue_url)
        return moved + self.pump_pipes() + self.relay_streams()

    def relay_streams(self) -> int:
        """Read each table stream once and hand its new records to their readers."""
        streams = {p.stream_arn for p in self.s.pipes if p.stream_arn} | {
            f.stream.stream_arn for f in self.s.functions if f.stream}
        return sum(self.relays.stream(arn) for arn in sorted(streams))

    def pump_pipes(self) -> int:
        """Move one batch through each pipe with an SQS source (EventsPipe: the shop's events
        into their FIFO message groups)."""
        return sum(self.relays.pump(p) for p in self.s.pipes if p.source_url)

    @property
    def message_groups(self) -> Counter[str]:
        """FIFO message groups the pipes sent to since the stack was created, with counts."""
        return self.relays.message_groups

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
        if not idle.queue_has_receivable(function.queue_url):
            return 0  # a receive would return nothing: no call (local/idle.py)
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
        context = LambdaContext(function.logical, str(uuid.uuid4()), function.memory,
                                invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:"
                                                     f"function:{function.logical}",
                                timeout_ms=function.timeout * 1000)
        self.invocations += 1
        with iam.running(function.logical), timings.timed(f"function {function.logical}"):
            return getattr(module, attr)(event, context)

    def invoke(self, function: stacks.Function, event: dict[str, Any]) -> set[str]:
        """Call the real handler in-process; return the ids of failed records."""
        try:
            response = self._call(function, event) or {}
        except Exception:  # the whole batch failed: every record comes back
            if "Records" not in event:
                raise
            return {r["messageId"] for r in event["Records"]}
        if not function.report_failures:  # Lambda reads a partial response only when told to
            return set()
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}



def _serialise_dynamodb_writes() -> None:
    """One DynamoDB request at a time, and transactions rolled back item by item rather than by
    moto's whole-table copies (local/dynamodb_transactions.py): concurrent writers (the wake and
    daily workers' threads) behave as on AWS, at a cost that does not grow with the tables.
    Stream records, shard iterators and deleted receipt handles are released as on AWS
    (local/retention.py), so memory does not grow with the events; a queue's attributes are
    read one at a time (local/sqs_attributes.py), so a send does not cost more as queues fill;
    what moto recomputes per request with the same answer is kept (local/moto_memo.py)."""
    from dialogue.local import dynamodb_transactions, moto_memo, retention, sqs_attributes

    dynamodb_transactions.install()
    retention.install()
    sqs_attributes.install()
    moto_memo.install()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
