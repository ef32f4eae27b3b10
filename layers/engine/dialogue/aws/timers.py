"""Timers on DynamoDB and Step Functions: one execution per time bucket, not per customer.

A wait writes a timer row under its bucket (`TIMER#<bucket end>#<shard>`), in the same
transaction as the state that parked the customer. The table's stream hands new timer rows to
`arm`, which starts the bucket's execution once (its name is the bucket); the execution sleeps
until the bucket ends, then wakes each shard (`DynamoTimers.page`). So a million waits in a month
cost at most one execution per bucket (2,880 a month at 15 minutes), whatever the customer count.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dialogue.aws import keys
from dialogue.engine.timers import TimerRef


class DynamoTimers:
    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def page(self, bucket: str, shard: int, cursor: dict[str, Any] | None,
             limit: int = 200) -> tuple[list[TimerRef], dict[str, Any] | None]:
        """One page of a bucket shard's timers, and where to go on (None: the shard is done)."""
        args: dict[str, Any] = {
            "TableName": self._table, "KeyConditionExpression": "pk = :p", "Limit": limit,
            "ExpressionAttributeValues": {":p": keys.timer_key(bucket, shard, "")["pk"]}}
        if cursor:
            args["ExclusiveStartKey"] = cursor
        page = self._db.query(**args)
        timers = [TimerRef(subject=i["subject"]["S"], activity_id=i["activity_id"]["S"],
                           entry=int(i["entry"]["N"]), element_id=i["element_id"]["S"],
                           due_at=datetime.fromisoformat(i["due_at"]["S"]))
                  for i in page["Items"]]
        return timers, page.get("LastEvaluatedKey")


def bucket_of_stream_record(body: str) -> str | None:
    """The bucket a timer row (as the dispatcher relays its stream record) belongs to."""
    try:
        image = json.loads(body)["dynamodb"]["NewImage"]
        return str(image["bucket"]["S"])
    except (ValueError, KeyError, TypeError):
        return None


class StepFunctionsWaker:
    """Starts the wake-up execution of a bucket, at most once per bucket."""

    def __init__(self, client: Any, state_machine_arn: str, shards: int):
        self._sfn, self._arn, self._shards = client, state_machine_arn, shards
        self._running: set[str] = set()  # buckets this container saw armed

    def arm(self, bucket: str, now: datetime) -> str:
        """'started' (or found running with the same input: Step Functions makes a second start
        a no-op), 'running' (this container armed it), or 'late' (its execution had already
        ended: a timer that reached us after its bucket fired gets an execution of its own)."""
        ends = datetime.fromisoformat(bucket.replace("Z", "+00:00"))
        if bucket in self._running and ends > now:
            return "running"
        name = "wake-" + bucket.replace("-", "").replace(":", "")
        started = self._start(name, bucket)
        if started:
            self._running.add(bucket)
            return "started"
        execution = self._arn.replace(":stateMachine:", ":execution:") + ":" + name
        status = self._sfn.describe_execution(executionArn=execution)["status"]
        if status == "RUNNING":
            self._running.add(bucket)
            return "running"
        self._start(f"{name}-late-{now:%Y%m%dT%H%M%S}", bucket)
        return "late"

    def _start(self, name: str, bucket: str) -> bool:
        payload = json.dumps({"bucket": bucket, "wake_at": bucket,
                              "shards": list(range(self._shards))}, separators=(",", ":"))
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=payload)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise
        return True
