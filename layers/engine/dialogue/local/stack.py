"""Create the template's resources on moto, and describe how events flow between them.

Built from the template as samtranslator expands it (local/sam.py): what CloudFormation
creates, not the SAM shorthand. Supported locally: SQS queues, DynamoDB tables, S3 buckets, SES
configuration sets, Secrets Manager secrets (generated, as GenerateSecretString does), event
buses and rules (moto delivers rule → SQS itself), AWS::Lambda::Function with their
AWS::Lambda::EventSourceMapping from an SQS queue or a DynamoDB stream (invoked in-process by the
runtime, with the mapping's settings), their schedules (an AWS::Events::Rule with a
ScheduleExpression, an AWS::Scheduler::Schedule: fired by the runtime), and EventBridge Pipes
from an SQS queue or a DynamoDB stream to SQS or to a bus (hand-written glue: moto has no Pipes).
Resources whose Condition is false are not created. The roles' policies are checked, not
enforced (local/iam.py). What AWS does that moto does not, and how the runtime matches it:
docs/aws-behaviours.md. Alarms, log groups, layers have no local effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogue.local import sam
from dialogue.local.template import Resolver, as_json_string


@dataclass
class Function:
    logical: str
    code_dir: Path
    handler: str  # module.function
    queue_url: str  # "" for a function on a schedule
    queue_arn: str
    batch_size: int
    environment: dict[str, str]
    schedule: str | None = None  # "rate(15 minutes)": moto never fires it, the runtime does
    schedule_zone: str = "UTC"  # an AWS::Scheduler::Schedule's ScheduleExpressionTimezone
    stream: StreamSource | None = None  # a DynamoDB stream event source mapping
    timeout: int = 3  # seconds (the expanded function's Timeout)
    memory: int = 128  # MB (MemorySize)
    mapping: str = ""  # the AWS::Lambda::EventSourceMapping's logical id ("" for none)
    report_failures: bool = False  # FunctionResponseTypes: ReportBatchItemFailures
    batching_window: int = 0  # MaximumBatchingWindowInSeconds
    max_concurrency: int = 1000  # ScalingConfig.MaximumConcurrency (SQS)


@dataclass
class StreamSource:
    """A DynamoDB event source mapping, as Lambda runs it (the runtime reads the stream)."""

    stream_arn: str
    patterns: list[str]  # FilterCriteria: records matching none are dropped, never invoked
    max_retries: int  # MaximumRetryAttempts (-1: until the record expires)
    on_failure_url: str  # DestinationConfig.OnFailure: an SQS queue, or ""
    report_failures: bool  # FunctionResponseTypes: ReportBatchItemFailures
    bisect: bool = False  # BisectBatchOnFunctionError
    starting_position: str = "LATEST"


@dataclass
class Pipe:
    logical: str
    stream_arn: str  # a DynamoDB stream source, or "" for
    source_url: str  # an SQS queue source (its URL and ARN)
    patterns: list[str]
    target_url: str | None  # an SQS queue (with SqsQueueParameters in target_sqs), or
    target_bus: str | None  # an event bus, with
    source: str | None  # its Source and
    detail_type: str | None  # DetailType (a "$.path" is read from the record)
    target_sqs: dict[str, str] = field(default_factory=dict)
    source_arn: str = ""
    batch_size: int = 10


@dataclass
class Stack:
    resolver: Resolver
    functions: list[Function]
    pipes: list[Pipe]

    def name(self, logical: str) -> str:
        return self.resolver.name(logical)

    def queue_url(self, logical: str) -> str:
        return self.resolver.ref(logical)


def create(session: Any, resolver: Resolver, template_dir: Path) -> Stack:
    res = resolver.resources
    by_type: dict[str, list[str]] = {}
    for logical, spec in res.items():
        by_type.setdefault(spec["Type"], []).append(logical)
    sqs, ddb = session.client("sqs"), session.client("dynamodb")
    queues = sorted(by_type.get("AWS::SQS::Queue", []),
                    key=lambda q: "RedrivePolicy" in res[q].get("Properties", {}))
    for logical in queues:
        _queue(sqs, resolver, logical)
    for logical in by_type.get("AWS::DynamoDB::Table", []):
        _table(ddb, resolver, logical)
    for logical in by_type.get("AWS::S3::Bucket", []):
        s3 = session.client("s3")
        s3.create_bucket(Bucket=resolver.name(logical),
                         CreateBucketConfiguration={"LocationConstraint": session.region_name})
        notify = res[logical].get("Properties", {}).get("NotificationConfiguration", {})
        if notify.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=resolver.name(logical),
                NotificationConfiguration={"EventBridgeConfiguration": {}})
    for logical in by_type.get("AWS::SecretsManager::Secret", []):
        _secret(session.client("secretsmanager"), resolver, logical)
    events = session.client("events")
    for logical in by_type.get("AWS::SES::ConfigurationSet", []):
        session.client("sesv2").create_configuration_set(
            ConfigurationSetName=resolver.name(logical))
    for logical in by_type.get("AWS::Events::EventBus", []):
        events.create_event_bus(Name=resolver.name(logical))
    for logical in by_type.get("AWS::Events::Rule", []):
        if "ScheduleExpression" not in res[logical]["Properties"]:  # schedules: see _schedule
            _rule(events, resolver, logical)
    pipes = [_pipe(resolver, logical) for logical in by_type.get("AWS::Pipes::Pipe", [])]
    functions = create_functions(resolver)
    return Stack(resolver, functions, pipes)


def _queue(sqs: Any, resolver: Resolver, logical: str) -> None:
    props = resolver.resolve(resolver.resources[logical].get("Properties", {}))
    attributes: dict[str, str] = {}
    for key in ("FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout",
                "MessageRetentionPeriod"):
        if key in props:
            value = props[key]
            attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = as_json_string(props["RedrivePolicy"])
    url = sqs.create_queue(QueueName=resolver.name(logical), Attributes=attributes)["QueueUrl"]
    resolver.attributes[(logical, "QueueUrl")] = url


def _secret(client: Any, resolver: Resolver, logical: str) -> None:
    generate = resolver.resolve(resolver.resources[logical].get("Properties", {})).get(
        "GenerateSecretString", {})
    value = client.get_random_password(**generate)["RandomPassword"]
    arn = client.create_secret(Name=resolver.name(logical), SecretString=value)["ARN"]
    resolver.attributes[(logical, "Arn")] = arn


def _table(ddb: Any, resolver: Resolver, logical: str) -> None:
    props = resolver.resolve(resolver.resources[logical]["Properties"])
    args: dict[str, Any] = {
        "TableName": resolver.name(logical), "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"], "BillingMode": "PAY_PER_REQUEST",
    }
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        args["StreamSpecification"] = {"StreamEnabled": True,
                                       "StreamViewType": stream["StreamViewType"]}
    table = ddb.create_table(**args)["TableDescription"]
    if "LatestStreamArn" in table:
        resolver.attributes[(logical, "StreamArn")] = table["LatestStreamArn"]


def _rule(events: Any, resolver: Resolver, logical: str) -> None:
    props = resolver.resolve(resolver.resources[logical]["Properties"])
    name = resolver.name(logical)
    bus = props.get("EventBusName", "default")
    events.put_rule(Name=name, EventBusName=bus, State=props.get("State", "ENABLED"),
                    EventPattern=as_json_string(props["EventPattern"]))
    targets = []
    for t in props.get("Targets", []):
        target = {"Id": t["Id"], "Arn": t["Arn"]}
        for key in ("SqsParameters", "InputTransformer", "InputPath", "Input", "RetryPolicy",
                    "DeadLetterConfig"):
            if key in t:
                target[key] = t[key]
        targets.append(target)
    events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def _pipe(resolver: Resolver, logical: str) -> Pipe:
    props = resolver.resolve(resolver.resources[logical]["Properties"])
    source_params = props.get("SourceParameters", {})
    filters = source_params.get("FilterCriteria", {}).get("Filters", [])
    target_arn: str = props["Target"]
    patterns = [as_json_string(f["Pattern"]) for f in filters]
    source_queue = _queue_of(resolver, props["Source"])
    stream_arn = "" if source_queue else props["Source"]
    source_url = resolver.ref(source_queue) if source_queue else ""
    batch = (source_params.get("SqsQueueParameters") or
             source_params.get("DynamoDBStreamParameters") or {}).get("BatchSize", 10)
    queue = _queue_of(resolver, target_arn)
    params = props.get("TargetParameters", {})
    if queue is not None:
        return Pipe(logical, stream_arn, source_url, patterns, resolver.ref(queue), None, None,
                    None, target_sqs=dict(params.get("SqsQueueParameters", {})),
                    source_arn=props["Source"], batch_size=int(batch))
    bus = target_arn.rsplit("/", 1)[-1]
    bus_params = params.get("EventBridgeEventBusParameters", {})
    return Pipe(logical, stream_arn, source_url, patterns, None, bus, bus_params.get("Source"),
                bus_params.get("DetailType"), source_arn=props["Source"], batch_size=int(batch))


def _queue_of(resolver: Resolver, arn: str) -> str | None:
    """The logical id of the template's queue with this ARN (None: not a queue)."""
    return next((q for q, spec in resolver.resources.items()
                 if spec["Type"] == "AWS::SQS::Queue" and resolver.get_att(q, "Arn") == arn),
                None)


def create_functions(resolver: Resolver) -> list[Function]:
    """One Function per trigger of each expanded AWS::Lambda::Function: its event source
    mappings, its schedules (an AWS::Events::Rule with a ScheduleExpression, an
    AWS::Scheduler::Schedule), or none (invoked directly: a state machine, a custom resource)."""
    res, out = resolver.resources, []
    for logical, spec in res.items():
        if spec["Type"] != "AWS::Lambda::Function":
            continue
        props = spec["Properties"]
        env = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        base: dict[str, Any] = {
            "logical": logical, "code_dir": sam.code_dir(props),
            "handler": props["Handler"], "environment": {k: str(v) for k, v in env.items()},
            "timeout": int(resolver.resolve(props.get("Timeout", 3))),
            "memory": int(resolver.resolve(props.get("MemorySize", 128)))}
        names = {resolver.ref(logical), resolver.get_att(logical, "Arn")}
        triggers = [_mapping(resolver, m, base) for m, s in res.items()
                    if s["Type"] == "AWS::Lambda::EventSourceMapping"
                    and resolver.resolve(s["Properties"]["FunctionName"]) in names]
        triggers += [_schedule(resolver, r, base) for r, s in res.items()
                     if _schedule_target(resolver, s) in names]
        out += triggers or [Function(queue_url="", queue_arn="", batch_size=0, **base)]
    return out


def _schedule_target(resolver: Resolver, spec: dict[str, Any]) -> str | None:
    props = spec.get("Properties", {})
    if spec["Type"] == "AWS::Scheduler::Schedule":
        return str(resolver.resolve(props["Target"]["Arn"]))
    if spec["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in props:
        return str(resolver.resolve(props["Targets"][0]["Arn"]))
    return None


def _schedule(resolver: Resolver, logical: str, base: dict[str, Any]) -> Function:
    """moto never fires schedules (and has no Scheduler): the runtime and the simulator do."""
    props = resolver.resolve(resolver.resources[logical]["Properties"])
    return Function(queue_url="", queue_arn="", batch_size=0, **base,
                    schedule=props["ScheduleExpression"],
                    schedule_zone=props.get("ScheduleExpressionTimezone", "UTC"))


def _mapping(resolver: Resolver, logical: str, base: dict[str, Any]) -> Function:
    """An AWS::Lambda::EventSourceMapping, with Lambda's defaults for what it leaves out
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventsourcemapping.html).
    A source the runtime cannot relay is refused, never silently left without a consumer."""
    m = resolver.resolve(resolver.resources[logical]["Properties"])
    source: str = m["EventSourceArn"]
    filters = m.get("FilterCriteria", {}).get("Filters", [])
    report = "ReportBatchItemFailures" in m.get("FunctionResponseTypes", [])
    queue = _queue_of(resolver, source)
    if queue is not None:
        if filters:
            raise ValueError(f"{logical}: FilterCriteria on an SQS mapping is not emulated")
        return Function(queue_url=resolver.ref(queue), queue_arn=source,
                        batch_size=int(m.get("BatchSize", 10)), **base, mapping=logical,
                        report_failures=report,
                        batching_window=int(m.get("MaximumBatchingWindowInSeconds", 0)),
                        max_concurrency=int(m.get("ScalingConfig", {}).get(
                            "MaximumConcurrency", 1000)))
    if ":dynamodb:" not in source or "/stream/" not in source:
        raise ValueError(f"{logical}: no local relay for the event source {source}")
    failure = m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")
    failure_queue = _queue_of(resolver, failure) if failure else None
    if failure and failure_queue is None:
        raise ValueError(f"{logical}: OnFailure {failure} is not a queue of the template")
    return Function(
        queue_url="", queue_arn="", batch_size=int(m.get("BatchSize", 100)), **base,
        mapping=logical, report_failures=report,
        batching_window=int(m.get("MaximumBatchingWindowInSeconds", 0)),
        stream=StreamSource(
            stream_arn=source, patterns=[as_json_string(f["Pattern"]) for f in filters],
            max_retries=int(m.get("MaximumRetryAttempts", -1)),
            on_failure_url=resolver.ref(failure_queue) if failure_queue else "",
            report_failures=report, bisect=bool(m.get("BisectBatchOnFunctionError", False)),
            starting_position=str(m.get("StartingPosition", "LATEST"))))


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, default=str)
