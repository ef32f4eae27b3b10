"""The daily check's reads: a parallel Scan of the customers table, one segment per worker.

The customers table holds customer states only, so a scan reads nothing else: its read units are
the states' compressed size / 8 KB (eventually consistent), about 0.25 per customer at 2 KB.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dialogue.aws import keys
from dialogue.aws.dynamo import state_from_item
from dialogue.model.customer import CustomerState


class DynamoCustomerScan:
    def __init__(self, client: Any, customers_table: str):
        self._db, self._table = client, customers_table

    def page(self, segment: int, total: int, cursor: dict[str, Any] | None,
             limit: int = 500) -> tuple[list[CustomerState], dict[str, Any] | None, float]:
        """States of one scan segment's next page, the cursor to go on (None: done) and the
        read units DynamoDB charged."""
        args: dict[str, Any] = {"TableName": self._table, "Segment": segment,
                                "TotalSegments": total, "Limit": limit,
                                "ReturnConsumedCapacity": "TOTAL"}
        if cursor:
            args["ExclusiveStartKey"] = cursor
        page = self._db.scan(**args)
        states = [state_from_item(i) for i in page["Items"] if "doc" in i]
        units = float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        return states, page.get("LastEvaluatedKey"), units


class DynamoDailyRuns:
    """One fan-out per shop-local day, even if the schedule fires twice; a run that died before
    handing its work out is taken up again by the schedule's retry once its lease is over, and a
    day whose run never finished counts as not checked (the next run catches it up)."""

    LEASE = timedelta(minutes=10)  # far more than a start takes (its timeout is 30 s)

    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def claim(self, day: str, at: str, segments: int) -> bool:
        lease_over = (datetime.fromisoformat(at) - self.LEASE).isoformat()
        try:
            self._db.put_item(
                TableName=self._table,
                ConditionExpression="attribute_not_exists(pk) OR "
                                    "(#s = :started AND started_at < :lease_over)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":started": {"S": "started"},
                                           ":lease_over": {"S": lease_over}},
                Item={**keys.daily_run_key(day), "kind": {"S": "daily_run"},
                      "status": {"S": "started"}, "started_at": {"S": at},
                      "segments": {"N": str(segments)}})
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def handed_out(self, day: str) -> None:
        """Every work item of the day is queued: the day counts as checked."""
        self._db.update_item(TableName=self._table, Key=keys.daily_run_key(day),
                             UpdateExpression="SET #s = :done",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":done": {"S": "handed_out"}})

    def checked(self, day: str) -> bool:
        item = self._db.get_item(TableName=self._table, Key=keys.daily_run_key(day),
                                 ConsistentRead=True).get("Item")
        # Runs recorded before the status existed had handed their work out.
        return item is not None and item.get("status", {}).get("S", "handed_out") == "handed_out"


class SqsWork:
    """Work items for a queue's workers, ten to a call."""

    def __init__(self, client: Any, queue_url: str):
        self._sqs, self._url = client, queue_url

    def send(self, items: list[dict[str, Any]], delay: int = 0) -> None:
        """`delay`: seconds before the items can be received (SQS's DelaySeconds, at most
        900, on a standard queue)."""
        later = {"DelaySeconds": min(delay, 900)} if delay else {}
        for i in range(0, len(items), 10):
            chunk = items[i:i + 10]
            result = self._sqs.send_message_batch(QueueUrl=self._url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps(item), **later}
                for n, item in enumerate(chunk)])
            if result.get("Failed"):
                raise RuntimeError(f"{len(result['Failed'])} work items not queued")
