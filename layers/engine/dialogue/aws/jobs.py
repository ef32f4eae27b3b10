"""Message job rows in DynamoDB: the one conditional write that makes a send happen once.

A job is claimed (`queued` → `sent`) before the provider is called: a redelivered job finds it
claimed and only publishes its MessageSent again (consumers dedupe on the job key). A provider
error that proves the message did not go reverts the claim so the queue retries it. SES and SNS
take no idempotency key, so if the function dies between the claim and the provider's answer
the message counts as sent: never twice, at worst once unconfirmed (its MessageSent event then
never appears).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dialogue.aws import keys, state_codec
from dialogue.aws.keys import shard
from dialogue.model.customer import CustomerState

SHARDS = 8  # release index partitions per day


class DynamoJobs:
    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def claim(self, job_key: str, at: datetime, provider: str) -> str:
        """"claimed", or the status the job already had ("sent", "failed"...)."""
        moved = self._move(job_key, "queued", "sent", at, {"provider": provider})
        return "claimed" if moved is True else str(moved)

    def schedule(self, job_key: str, at: datetime, release_at: datetime) -> bool:
        """Parked until its send time, in the release index (sharded by key: no hot day)."""
        bucket = f"{release_at.astimezone(UTC).date().isoformat()}#{shard(job_key, SHARDS)}"
        return self._move(job_key, "queued", "scheduled", at,
                          {"reason": f"release at {release_at.isoformat()}",
                           "release_bucket": bucket,
                           "release_at": release_at.astimezone(UTC).isoformat()}) is True

    def due(self, now: datetime, days_back: int = 3) -> list[str]:
        """The payloads of scheduled jobs whose send time has come (the last few days)."""
        out: list[str] = []
        for back in range(days_back, -1, -1):
            day = (now.astimezone(UTC).date() - timedelta(days=back)).isoformat()
            for n in range(SHARDS):
                kwargs: dict[str, Any] = {
                    "TableName": self._table, "IndexName": "release",
                    "KeyConditionExpression": "release_bucket = :b AND release_at <= :now",
                    "ExpressionAttributeValues": {":b": {"S": f"{day}#{n}"},
                                                  ":now": {"S": now.astimezone(UTC).isoformat()}},
                }
                while True:
                    page = self._db.query(**kwargs)
                    out += [item["payload"]["S"] for item in page["Items"]]
                    if "LastEvaluatedKey" not in page:
                        break
                    kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    def revert(self, job_key: str) -> None:
        self._db.update_item(
            TableName=self._table, Key=keys.job_key(job_key),
            UpdateExpression="SET #s = :queued REMOVE sent_at, provider",
            ConditionExpression="#s = :sent", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":queued": {"S": "queued"}, ":sent": {"S": "sent"}})

    def finish(self, job_key: str, status: str, at: datetime, reason: str,
               expected: str = "queued") -> bool:
        """suppressed / held / failed / scheduled, with why; False if it was already handled."""
        extra = {"reason": reason}
        if status != "scheduled":
            extra["outcome"] = "MessageSuppressed"
        return self._move(job_key, expected, status, at, extra) is True

    def _move(self, job_key: str, expected: str, status: str, at: datetime,
              extra: dict[str, str]) -> bool | str:
        """True, or the status the row had when the condition failed."""
        names = {"#s": "status", **{f"#{k}": k for k in extra}}
        values = {":expected": {"S": expected}, ":status": {"S": status},
                  ":at": {"S": at.isoformat()}, **{f":{k}": {"S": v} for k, v in extra.items()}}
        sets = ", ".join(["#s = :status", f"{status}_at = :at", *(f"#{k} = :{k}" for k in extra)])
        update = f"SET {sets}"
        condition = "#s = :expected"
        if expected == "queued":  # a scheduled job whose time has come moves like a queued one
            condition = "#s IN (:expected, :scheduled)"
            values[":scheduled"] = {"S": "scheduled"}
        if status != "scheduled":  # it leaves the release index
            update += " REMOVE release_bucket"
        try:
            self._db.update_item(
                TableName=self._table, Key=keys.job_key(job_key), UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames=names,
                ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return str(e.response.get("Item", {}).get("status", {}).get("S", "missing"))
            raise
        return True


class DynamoRecipients:
    """The customer's state (consent, address, profile) and the suppression list."""

    def __init__(self, client: Any, table: str, customers_table: str):
        self._db, self._table, self._customers = client, table, customers_table

    def state(self, subject: str) -> CustomerState | None:
        item = self._db.get_item(TableName=self._customers, Key=keys.state_key(subject),
                                 ConsistentRead=True).get("Item")
        if item is None:
            return None
        return state_codec.decode(item["doc"]["B"])

    def suppressed(self, address_hash: str) -> bool:
        item = self._db.get_item(TableName=self._table,
                                 Key=keys.suppression_key(address_hash)).get("Item")
        return item is not None

    def suppress(self, address_hash: str, reason: str, at: datetime) -> None:
        self._db.put_item(TableName=self._table, Item={
            **keys.suppression_key(address_hash), "kind": {"S": "suppression"},
            "reason": {"S": reason}, "since": {"S": at.isoformat()}})
