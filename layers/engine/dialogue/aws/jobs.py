"""Message job rows in DynamoDB: the one conditional write that makes a send happen once.

A job is claimed (`queued` → `sent`) before the provider is called: a redelivered job finds it
claimed and only publishes its MessageSent again (consumers dedupe on the job key). A provider
error that proves the message did not go reverts the claim so the queue retries it. SES and SNS
take no idempotency key, so if the function dies between the claim and the provider's answer
the message counts as sent: never twice, at worst once unconfirmed (its MessageSent event then
never appears).
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dialogue.aws import keys
from dialogue.model.customer import CustomerState


class DynamoJobs:
    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def claim(self, job_key: str, at: datetime, provider: str) -> str:
        """"claimed", or the status the job already had ("sent", "failed"...)."""
        moved = self._move(job_key, "queued", "sent", at, {"provider": provider})
        return "claimed" if moved is True else str(moved)

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
        try:
            self._db.update_item(
                TableName=self._table, Key=keys.job_key(job_key), UpdateExpression=f"SET {sets}",
                ConditionExpression="#s = :expected", ExpressionAttributeNames=names,
                ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return str(e.response.get("Item", {}).get("status", {}).get("S", "missing"))
            raise
        return True


class DynamoRecipients:
    """The customer's state (consent, address, profile) and the suppression list."""

    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def state(self, subject: str) -> CustomerState | None:
        item = self._db.get_item(TableName=self._table, Key=keys.state_key(subject),
                                 ConsistentRead=True).get("Item")
        if item is None:
            return None
        return CustomerState.model_validate_json(zlib.decompress(item["doc"]["B"]))

    def suppressed(self, address_hash: str) -> bool:
        item = self._db.get_item(TableName=self._table,
                                 Key=keys.suppression_key(address_hash)).get("Item")
        return item is not None

    def suppress(self, address_hash: str, reason: str, at: datetime) -> None:
        self._db.put_item(TableName=self._table, Item={
            **keys.suppression_key(address_hash), "kind": {"S": "suppression"},
            "reason": {"S": reason}, "since": {"S": at.isoformat()}})
