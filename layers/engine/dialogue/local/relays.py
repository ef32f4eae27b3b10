"""What AWS moves between the template's resources and moto does not: a Pipe with an SQS source
(SqsQueueParameters resolved per message), a Pipe or a Lambda event source mapping on a DynamoDB
stream (filters, batches, partial failures, retries, the OnFailure record), and the rule input
transformer's `<aws.events.event.json>` as EventBridge sends it. docs/aws-behaviours.md lists
each behaviour with the AWS documentation it follows."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dialogue.local import idle
from dialogue.local import stack as stacks
from dialogue.local.template import ACCOUNT, REGION
from dialogue.local.timings import timed

if TYPE_CHECKING:
    from dialogue.local.runtime import LocalAws


class Relays:
    def __init__(self, aws: LocalAws):
        self.aws = aws
        self._positions: dict[str, dict[str, str]] = {}  # stream → shard → last read
        self.message_groups: Counter[str] = Counter()  # FIFO groups the pipes sent to

    def stream(self, stream_arn: str) -> int:
        """Read a table stream once: each record to every pipe whose filter it passes, and to
        every function mapped to the stream (in batches, as Lambda's event source mapping does).
        Each reader keeps its own position on AWS; here they advance together. The position is
        kept as the last sequence number read: moto replaces a table's stream shard when it
        rolls a cancelled transaction back, so an iterator kept across calls would go stale."""
        from moto.events.models import EventPattern

        if not idle.stream_has_new(stream_arn, self._positions.setdefault(stream_arn, {})):
            return 0  # nothing written since the last read: no call (local/idle.py)
        pipes = [(p, [EventPattern.load(x) for x in p.patterns])
                 for p in self.aws.s.pipes if p.stream_arn == stream_arn]
        readers = [(f, [EventPattern.load(x) for x in f.stream.patterns])
                   for f in self.aws.s.functions if f.stream and f.stream.stream_arn == stream_arn]
        batches: dict[str, list[dict[str, Any]]] = {f.logical: [] for f, _ in readers}
        moved = 0
        with timed("stream reads"):
            new = self._new_records(stream_arn)
        for record in new:
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
        streams = self.aws.client("dynamodbstreams")
        read = self._positions.setdefault(stream_arn, {})
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
        """Lambda's DynamoDB event source mapping, with the mapping's settings: batches of
        BatchSize in order; records before the lowest sequence number reported failed are done
        (ReportBatchItemFailures), the rest retried; a batch whose invocation raised is split in
        two and each half retried in order (BisectBatchOnFunctionError; a split does not count
        as a retry); after MaximumRetryAttempts the batch is named on the OnFailure queue and
        skipped. https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html"""
        assert function.stream is not None
        size = max(function.batch_size, 1)
        work = [(records[i:i + size], 0) for i in range(0, len(records), size)]
        while work:
            batch, retries = work.pop(0)
            failed, raised = self._stream_failures(function, batch)
            if not failed:
                continue
            first = next((i for i, r in enumerate(batch)
                          if r["dynamodb"]["SequenceNumber"] in failed), 0)
            batch = batch[first:]
            if raised and function.stream.bisect and len(batch) > 1:
                half = len(batch) // 2
                work[:0] = [(batch[:half], retries), (batch[half:], retries)]
                continue
            if 0 <= function.stream.max_retries <= retries:
                self._stream_dead_letter(function, batch, retries + 1)
                continue
            work.insert(0, (batch, retries + 1))
        return len(records)

    def _stream_failures(self, function: stacks.Function,
                         batch: list[dict[str, Any]]) -> tuple[set[str], bool]:
        """The sequence numbers to retry, and whether the invocation raised. A partial response
        counts only when the mapping turned ReportBatchItemFailures on."""
        try:
            response = self.aws._call(function, {"Records": batch}) or {}
        except Exception:  # the whole batch failed
            return {r["dynamodb"]["SequenceNumber"] for r in batch}, True
        if not (function.stream and function.stream.report_failures):
            return set(), False
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}, False

    def _stream_dead_letter(self, function: stacks.Function, batch: list[dict[str, Any]],
                            invokes: int) -> None:
        """The invocation record Lambda sends to an OnFailure SQS destination for a stream: the
        batch's shard and sequence numbers (not the records: they are read again from the
        stream while it keeps them, 24 hours)."""
        assert function.stream is not None
        if not function.stream.on_failure_url:
            return
        seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
        self.aws.client("sqs").send_message(QueueUrl=function.stream.on_failure_url,
                                        MessageBody=json.dumps({
            "requestContext": {"functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
                                              f"{function.logical}",
                               "condition": "RetryAttemptsExhausted",
                               "approximateInvokeCount": invokes},
            "version": "1.0",
            "DDBStreamBatchInfo": {"startSequenceNumber": seqs[0], "endSequenceNumber": seqs[-1],
                                   "batchSize": len(batch),
                                   "streamArn": function.stream.stream_arn}}))

    def pump(self, pipe: stacks.Pipe) -> int:
        """A pipe with an SQS source: each message (as Pipes' SQS record) through the filter to
        the target queue, its SqsQueueParameters resolved per message ("$.body.group" read from
        a JSON body; a static string kept as written). A message whose parameters do not resolve
        stays on the source queue: retried, then moved to its DLQ by the redrive policy."""
        from moto.events.models import EventPattern

        if not idle.queue_has_receivable(pipe.source_url):
            return 0  # a receive would return nothing: no call (local/idle.py)
        sqs, patterns = self.aws.client("sqs"), [EventPattern.load(x) for x in pipe.patterns]
        with timed("pipe receives"):
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
                    params = {k: dynamic(str(v), record) for k, v in pipe.target_sqs.items()}
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
            params = {k: dynamic(str(v), record) for k, v in pipe.target_sqs.items()}
            self.aws.client("sqs").send_message(QueueUrl=pipe.target_url,
                                            MessageBody=json.dumps(record), **params)
            return
        self.aws.client("events").put_events(Entries=[{
            "EventBusName": pipe.target_bus, "Source": pipe.source or "pipe",
            "DetailType": dynamic(pipe.detail_type or "", record), "Detail": json.dumps(record),
        }])



def dynamic(value: str, record: dict[str, Any]) -> str:
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


def rule_input_as_aws_sends_it() -> None:
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
