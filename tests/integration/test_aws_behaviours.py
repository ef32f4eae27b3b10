"""AWS behaviours the product relies on that moto does not enforce (or does differently), each
checked against the local runtime or the template. The list, with the AWS documentation each
comes from: docs/aws-behaviours.md (keep the two in step)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from dialogue.local import iam, readback, sam
from dialogue.local import stack as stacks
from dialogue.local.relays import dynamic
from dialogue.local.runtime import LOCAL_PARAMETERS, TEMPLATE, LocalAws
from dialogue.local.template import Resolver, load
from moto import mock_aws

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws = LocalAws(stack_name="behaviours").start()
    yield aws
    aws.stop()


def _queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def test_a_rule_targets_static_message_group_id_stays_literal() -> None:
    """EventBridge SqsParameters.MessageGroupId is a plain string: no path is read."""
    with mock_aws():
        sqs, events = boto3.client("sqs", REGION), boto3.client("events", REGION)
        url, arn = _queue(sqs, "q.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["shop"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "q", "Arn": arn, "SqsParameters": {
            "MessageGroupId": "$.detail.customer_id"}}])
        events.put_events(Entries=[{"Source": "shop", "DetailType": "X",
                                    "Detail": json.dumps({"customer_id": "lea"})}])
        [message] = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])[
            "Messages"]
    assert message["Attributes"]["MessageGroupId"] == "$.detail.customer_id"


def test_no_rule_target_in_the_template_relies_on_a_path_in_its_message_group() -> None:
    for logical, spec in load(TEMPLATE)["Resources"].items():
        if spec["Type"] != "AWS::Events::Rule":
            continue
        for target in spec["Properties"].get("Targets", []):
            group = target.get("SqsParameters", {}).get("MessageGroupId", "")
            assert not str(group).startswith("$"), f"{logical}: {group} would stay literal"


def test_a_pipes_dynamic_body_path_is_read_from_a_json_body_and_a_static_one_is_kept() -> None:
    record = {"body": json.dumps({"group": "c#lea", "event": {"id": "e-1"}})}
    assert dynamic("$.body.group", record) == "c#lea"
    assert dynamic("$.body.event.id", record) == "e-1"
    assert dynamic("events", record) == "events"  # not a path: literal
    with pytest.raises(KeyError):  # nothing there: the message is not sent, it is retried
        dynamic("$.body.missing", record)
    with pytest.raises(ValueError):  # a body that is not JSON has no keys to read
        dynamic("$.body.group", {"body": "plain text"})


def test_put_events_to_a_bus_with_no_matching_rule_succeeds_and_delivers_nothing() -> None:
    """Why docs/events.md publishes to the stack's bus: the default bus accepts and drops."""
    with mock_aws():
        sqs, events = boto3.client("sqs", REGION), boto3.client("events", REGION)
        url, arn = _queue(sqs, "q")
        events.create_event_bus(Name="shop")
        events.put_rule(Name="r", EventBusName="shop", EventPattern='{"source": ["shop"]}')
        events.put_targets(Rule="r", EventBusName="shop", Targets=[{"Id": "q", "Arn": arn}])
        result = events.put_events(Entries=[{"Source": "shop", "DetailType": "OrderPlaced",
                                             "Detail": "{}"}])  # no EventBusName: default
        assert result["FailedEntryCount"] == 0
        assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_at_most_two_readers_per_table_stream() -> None:
    """DynamoDB throttles more than two processes reading one stream shard."""
    readers: dict[str, list[str]] = {}
    for logical, spec in load(TEMPLATE)["Resources"].items():
        props = spec.get("Properties", {})
        if spec["Type"] == "AWS::Pipes::Pipe" and "StreamArn" in json.dumps(props["Source"]):
            readers.setdefault(json.dumps(props["Source"]), []).append(logical)
        for source in props.get("Events", {}).values() if "Events" in props else []:
            if source.get("Type") in ("DynamoDB", "Kinesis"):
                readers.setdefault(json.dumps(source["Properties"]["Stream"]), []).append(logical)
    assert readers and all(len(r) <= 2 for r in readers.values()), readers


def test_a_rule_inserts_the_event_as_published(local_aws: LocalAws) -> None:
    """`<aws.events.event.json>` is the event as EventBridge delivers it: ISO `time`, no extra
    key (moto's own has an epoch `time` and an `ingestion-time`; the runtime corrects it)."""
    local_aws.reset()
    local_aws.put_events([{"source": "shop", "detail-type": "ProductViewed", "time":
                           "2026-12-04T18:00:00Z", "detail": {"customer_id": "lea"}}])
    [message] = readback.take_queue(local_aws, "IngestQueue")
    body = json.loads(message["Body"])
    assert body["group"] == "c#lea"
    assert body["event"]["time"] == "2026-12-04T18:00:00Z"
    assert set(body["event"]) == {"version", "id", "detail-type", "source", "account", "time",
                                  "region", "resources", "detail"}


def test_the_stream_mapping_invokes_only_for_rows_its_filter_passes(local_aws: LocalAws) -> None:
    local_aws.reset()
    ddb, table = local_aws.client("dynamodb"), local_aws.s.name("Table")
    local_aws.relay_streams()
    before = local_aws.invocations
    ddb.put_item(TableName=table, Item={"pk": {"S": "RFM#1"}, "sk": {"S": "HIST"}})
    local_aws.relay_streams()
    assert local_aws.invocations == before  # filtered out: Lambda is not invoked

    ddb.put_item(TableName=table, Item={"pk": {"S": "TIMER#b#0"}, "sk": {"S": "k"},
                                        "kind": {"S": "timer"}, "bucket": {"S": "b"}})
    local_aws.relay_streams()
    assert local_aws.invocations == before + 1
    [timer] = readback.take_queue(local_aws, "TimersQueue")
    assert json.loads(timer["Body"])["dynamodb"]["NewImage"]["bucket"] == {"S": "b"}


def test_a_batch_still_failing_after_its_retries_is_named_on_the_failure_queue(
        local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    from dialogue.aws.dispatch import StreamDispatcher

    local_aws.reset()
    local_aws.relay_streams()
    monkeypatch.setattr(StreamDispatcher, "handle", lambda self, records: [
        r["dynamodb"]["SequenceNumber"] for r in records])
    before = local_aws.invocations
    local_aws.client("dynamodb").put_item(
        TableName=local_aws.s.name("Table"),
        Item={"pk": {"S": "TIMER#b#0"}, "sk": {"S": "k"}, "kind": {"S": "timer"},
              "bucket": {"S": "b"}})
    local_aws.relay_streams()

    assert local_aws.invocations - before == 1 + 10  # MaximumRetryAttempts: 10
    [failure] = readback.take_queue(local_aws, "OutboxDeadLetterQueue")
    info = json.loads(failure["Body"])["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["streamArn"] == local_aws.s.resolver.get_att("Table", "StreamArn")


def _timer_row(ddb: Any, table: str, bucket: str) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": f"TIMER#{bucket}#0"}, "sk": {"S": "k"},
                                        "kind": {"S": "timer"}, "bucket": {"S": bucket}})


def test_a_stream_batch_whose_invocation_raised_is_split_and_only_the_bad_record_is_named(
        local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """BisectBatchOnFunctionError (DispatchFunction's mapping): the halves are retried in order,
    the good records relayed, the one bad record retried MaximumRetryAttempts times, then named."""
    from dialogue.aws.dispatch import StreamDispatcher

    local_aws.reset()
    local_aws.relay_streams()
    relay = StreamDispatcher.handle

    def poisoned(self: Any, records: list[dict[str, Any]]) -> list[str]:
        if any(r["dynamodb"]["NewImage"]["bucket"]["S"] == "bad" for r in records):
            raise RuntimeError("poison")
        return relay(self, records)

    monkeypatch.setattr(StreamDispatcher, "handle", poisoned)
    ddb, table = local_aws.client("dynamodb"), local_aws.s.name("Table")
    for bucket in ("a", "bad", "c", "d"):
        _timer_row(ddb, table, bucket)
    local_aws.relay_streams()

    relayed = {json.loads(m["Body"])["dynamodb"]["NewImage"]["bucket"]["S"]
               for m in readback.take_queue(local_aws, "TimersQueue")}
    assert relayed == {"a", "c", "d"}
    [failure] = readback.take_queue(local_aws, "OutboxDeadLetterQueue")
    body = json.loads(failure["Body"])
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1
    assert body["requestContext"]["approximateInvokeCount"] == 1 + 10  # MaximumRetryAttempts


def test_a_partial_response_counts_only_when_the_mapping_asks_for_it(
        local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda ignores batchItemFailures unless FunctionResponseTypes has ReportBatchItemFailures
    (ArmFunction's mapping has not: its batch is done whatever it returns)."""
    local_aws.reset()
    monkeypatch.setattr(local_aws, "_call", lambda function, event: {"batchItemFailures": [
        {"itemIdentifier": r["messageId"]} for r in event["Records"]]})
    functions = {f.logical: f for f in local_aws.s.functions}
    event = {"Records": [{"messageId": "m-1"}]}
    assert local_aws.invoke(functions["ArmFunction"], event) == set()  # deleted, not retried
    assert local_aws.invoke(functions["OnEventFunction"], event) == {"m-1"}  # comes back


# ------------------------------------------------------------------ one source of wiring


def test_every_event_source_mapping_and_schedule_of_the_expanded_template_runs_locally(
        local_aws: LocalAws) -> None:
    """The local stack is what samtranslator expands: each AWS::Lambda::EventSourceMapping has a
    relay with its settings, each schedule a function it fires."""
    expanded = sam.expand(TEMPLATE, local_aws.parameters)["Resources"]
    mappings = {k: v["Properties"] for k, v in expanded.items()
                if v["Type"] == "AWS::Lambda::EventSourceMapping"}
    local = {f.mapping: f for f in local_aws.s.functions if f.mapping}
    assert set(local) == set(mappings)
    for logical, props in mappings.items():
        assert local[logical].logical == props["FunctionName"]["Ref"]
        assert local[logical].batch_size == props["BatchSize"], logical
        assert local[logical].report_failures == (
            "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])), logical
    schedules = sorted(v["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
                       if v["Type"] == "AWS::Scheduler::Schedule"
                       else v["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]
                       for v in expanded.values()
                       if v["Type"] == "AWS::Scheduler::Schedule" or "ScheduleExpression" in
                       v.get("Properties", {}))
    assert schedules == sorted(f.logical for f in local_aws.s.functions if f.schedule)
    send = next(f for f in local_aws.s.functions if f.logical == "SendMessageFunction")
    assert send.max_concurrency == int(local_aws.parameters.get("SendConcurrency", "2"))


def test_a_batch_size_changed_in_the_template_is_the_one_the_local_runtime_uses(
        local_aws: LocalAws, tmp_path: Path) -> None:
    """Drift: the dispatcher's mapping with BatchSize 2 in a copy of the template, and five
    stream records reach it in three invocations (the template's 100: one)."""
    template = load(TEMPLATE)
    for spec in template["Resources"].values():  # the copy lives elsewhere: absolute paths
        props = spec.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):
                props[key] = str((TEMPLATE.parent / props[key]).resolve())
    template["Resources"]["DispatchFunction"]["Properties"]["Events"]["Stream"]["Properties"][
        "BatchSize"] = 2
    copy = tmp_path / "template.yaml"
    copy.write_text(json.dumps(template))
    try:
        local_aws.template_path = copy
        local_aws.reset()
        local_aws.relay_streams()
        before = local_aws.invocations
        ddb, table = local_aws.client("dynamodb"), local_aws.s.name("Table")
        for bucket in "abcde":
            _timer_row(ddb, table, bucket)
        local_aws.relay_streams()
        assert local_aws.invocations - before == 3
        assert len(readback.take_queue(local_aws, "TimersQueue")) == 5
    finally:
        local_aws.template_path = TEMPLATE
        local_aws.reset()


def test_an_event_source_the_runtime_cannot_relay_is_refused_with_its_mapping(
        tmp_path: Path) -> None:
    """A mapping with no local relay (a Kinesis stream) stops the stack, naming the mapping,
    rather than leaving a consumer silently unfed."""
    template = load(TEMPLATE)
    events = template["Resources"]["DispatchFunction"]["Properties"]["Events"]
    events["Stream"]["Type"] = "Kinesis"
    events["Stream"]["Properties"]["Stream"] = "arn:aws:kinesis:eu-west-1:123456789012:stream/s"
    for key in ("FilterCriteria", "DestinationConfig"):
        events["Stream"]["Properties"].pop(key)
    expanded = sam.expand(template, LOCAL_PARAMETERS, TEMPLATE.parent)
    resolver = Resolver(expanded, "refused", LOCAL_PARAMETERS)
    with pytest.raises(ValueError, match="DispatchFunctionStream: no local relay"):
        stacks.create_functions(resolver)


def test_the_least_privilege_check_refuses_what_a_role_does_not_allow(
        local_aws: LocalAws) -> None:
    """The check tests/e2e/test_least_privilege.py runs, against the expanded roles."""
    resolver = local_aws.s.resolver
    on_event = iam.statements(resolver, "OnEventFunction")
    send = iam.statements(resolver, "SendMessageFunction")
    table = resolver.get_att("Table", "Arn")
    bucket = resolver.name("CatalogBucket")

    def ok(statements: list[dict[str, Any]], service: str, operation: str,
           params: dict[str, Any]) -> bool:
        return all(iam.allowed(statements, iam.Request("f", a, r, c))
                   for a, r, c in iam.authorizations(service, operation, params))

    assert ok(on_event, "dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": table}}, {"ConditionCheck": {"TableName": table}}]})
    assert ok(on_event, "dynamodb", "Scan", {"TableName": table})  # CustomerDeleted's erase
    assert not ok(on_event, "dynamodb", "DeleteTable", {"TableName": table})
    assert not ok(on_event, "dynamodb", "Scan", {"TableName": table.replace("-Table", "-Other")})
    assert ok(on_event, "s3", "ListObjectsV2", {"Bucket": bucket, "Prefix": "activities/"})
    assert not ok(on_event, "s3", "ListObjectsV2", {"Bucket": bucket})  # s3:prefix condition
    assert not ok(on_event, "sqs", "SendMessage",
                  {"QueueUrl": local_aws.s.queue_url("MessagesQueue")})
    assert ok(send, "sns", "Publish", {"PhoneNumber": "+33600000000"})
    assert not ok(send, "sns", "Publish", {"TopicArn": "arn:aws:sns:eu-west-1:1:t"})
    assert ok(send, "ses", "SendEmail", {"FromEmailAddress": "Shop <news@shop.example>",
                                         "ConfigurationSetName": resolver.name(
                                             "MailConfigurationSet")})
    assert not ok(send, "ses", "SendEmail", {"FromEmailAddress": "x@other.example"})
    assert ok(send, "secretsmanager", "GetSecretValue",
              {"SecretId": resolver.ref("UnsubscribeSecret")})
