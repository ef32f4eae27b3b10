"""Message job rows in DynamoDB: every move of the job's state machine (`delivery.jobs`) is one
conditional update.

The claim follows powertools' idempotency record: one conditional update takes a job that is
`queued` or `scheduled` (or already `sending` under this very attempt: a botocore retry of a
claim whose reply was lost finds its own claim) and returns the old row on a failed condition
(`ReturnValuesOnConditionCheckFailure: ALL_OLD`), so that a redelivery tells a running lease
from an abandoned one without a second read.
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html

Rows that need a look later carry `unsettled_bucket` / `unsettled_at` and so appear in the
sparse `unsettled` index: `sending` until its lease ends, `failed` and `unknown` until they are
in the dead-letter queue. Times are stored as UTC ISO strings, which sort as times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dialogue.aws import keys, state_codec
from dialogue.aws.keys import shard
from dialogue.delivery.jobs import (
    OUTCOME,
    Abandoned,
    Busy,
    Claim,
    Claimed,
    JobStatus,
    Settled,
    Unsettled,
    control_reason,
)
from dialogue.model.customer import CustomerState

SHARDS = 8  # release index partitions per day
UNSETTLED_SHARDS = 8  # unsettled index partitions
# How long a queued job (or a scheduled one past its send time) may wait for send_message before
# the reconciliation puts it on the messages queue again (its message was lost on the way).
QUEUED_FOR = timedelta(hours=1)
MAX_REQUEUES = 3  # then it is dead-lettered: never handled, with that reason


def unsettled_fields(job_key: str, due: datetime) -> dict[str, dict[str, str]]:
    """A new job row's place in the unsettled index: looked at if still queued at `due`."""
    return {"unsettled_bucket": _s(str(shard(job_key, UNSETTLED_SHARDS))),
            "unsettled_at": _s(_iso(due))}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class DynamoJobs:
    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def claim(self, job_key: str, attempt: str, now: datetime, lease_until: datetime,
              provider: str) -> Claim:
        """Claimed, or why not: a running lease (Busy), a dead one (Abandoned), or the status
        the job already reached (Settled)."""
        old = self._update(
            job_key,
            "SET #s = :sending, attempt = :a, lease_until = :lease, provider = :p, "
            "sending_at = :now, unsettled_bucket = :b, unsettled_at = :lease "
            "REMOVE release_bucket",
            "#s IN (:queued, :scheduled) OR (#s = :sending AND attempt = :a)",
            {":sending": _s("sending"), ":a": _s(attempt), ":lease": _s(_iso(lease_until)),
             ":p": _s(provider), ":now": _s(_iso(now)),
             ":b": _s(str(shard(job_key, UNSETTLED_SHARDS))),
             ":queued": _s("queued"), ":scheduled": _s("scheduled")})
        if old is True:
            return Claimed(attempt)
        if not isinstance(old, dict):
            return Settled("missing")
        status = old.get("status", {}).get("S", "missing")
        if status != "sending":
            return Settled(status)
        lease = datetime.fromisoformat(old["lease_until"]["S"])
        if lease > now:
            return Busy(lease)
        return Abandoned(old["attempt"]["S"])

    def mark_sent(self, job_key: str, attempt: str, now: datetime, provider_id: str) -> bool:
        """The provider's answer, recorded by the attempt that holds the claim (again after a
        lost reply); False if the lease ran out and the job was settled as unknown meanwhile."""
        return self._update(
            job_key,
            "SET #s = :sent, sent_at = :now, provider_id = :id "
            "REMOVE lease_until, unsettled_bucket, unsettled_at",
            "#s IN (:sending, :sent) AND attempt = :a",
            {":sent": _s("sent"), ":sending": _s("sending"), ":now": _s(_iso(now)),
             ":id": _s(provider_id), ":a": _s(attempt)}) is True

    def release(self, job_key: str, attempt: str) -> None:
        """Give the claim back: the provider said the message did not go."""
        self._update(
            job_key,
            "REMOVE attempt, lease_until, provider, sending_at, unsettled_bucket, unsettled_at "
            "SET #s = :queued",
            "#s = :sending AND attempt = :a",
            {":queued": _s("queued"), ":sending": _s("sending"), ":a": _s(attempt)})

    def settle(self, job_key: str, attempt: str, status: JobStatus, now: datetime,
               reason: str) -> bool:
        """`sending` under `attempt` → failed / unknown with why, due for the dead-letter queue
        at once (it stays in the unsettled index until `reported`)."""
        return self._update(
            job_key,
            "SET #s = :status, reason = :reason, settled_at = :now, unsettled_at = :now "
            "REMOVE lease_until",
            "#s IN (:sending, :status) AND attempt = :a",
            {":status": _s(status.value), ":reason": _s(reason[:1000]), ":now": _s(_iso(now)),
             ":sending": _s("sending"), ":a": _s(attempt)}) is True

    def reported(self, job_key: str, status: JobStatus, now: datetime) -> bool:
        """In the dead-letter queue: out of the unsettled index, and its outcome on the bus."""
        return self._update(
            job_key,
            "SET outcome = :outcome, reported_at = :now REMOVE unsettled_bucket, unsettled_at",
            "#s = :status AND attribute_exists(unsettled_bucket)",
            {":outcome": _s(OUTCOME[status]), ":now": _s(_iso(now)),
             ":status": _s(status.value)}) is True

    def schedule(self, job_key: str, at: datetime, release_at: datetime,
                 reason: str | None = None) -> bool:
        """Parked until its send time, in the release index (sharded by key: no hot day). A
        released job may be parked again (quiet hours that still hold where the customer now
        lives): its release time moves on."""
        bucket = f"{release_at.astimezone(UTC).date().isoformat()}#{shard(job_key, SHARDS)}"
        # A control's hold is also added to the row's `held` set, kept once the job is sent: the
        # statistics count every message held and why, in the write this makes anyway (SET and
        # ADD, a set union, in one update expression: https://docs.aws.amazon.com/amazondynamodb/
        # latest/developerguide/Expressions.UpdateExpressions.html).
        held = control_reason(reason)
        return self._update(
            job_key,
            "SET #s = :scheduled, scheduled_at = :at, reason = :reason, release_bucket = :b, "
            "release_at = :release, unsettled_at = :due" + (" ADD held :held" if held else ""),
            "#s IN (:queued, :scheduled)",
            {":scheduled": _s("scheduled"), ":at": _s(at.isoformat()),
             ":reason": _s(reason or f"release at {release_at.isoformat()}"), ":b": _s(bucket),
             ":release": _s(_iso(release_at)), ":queued": _s("queued"),
             ":due": _s(_iso(release_at + QUEUED_FOR)),
             **({":held": {"SS": [held[:200]]}} if held else {})}) is True

    def finish(self, job_key: str, status: JobStatus, at: datetime, reason: str) -> bool:
        """suppressed / held, with why; False if it was already handled."""
        return self._update(
            job_key,
            f"SET #s = :status, {status.value}_at = :at, reason = :reason, outcome = :outcome "
            "REMOVE release_bucket, unsettled_bucket, unsettled_at",
            "#s IN (:queued, :scheduled)",
            {":status": _s(status.value), ":at": _s(at.isoformat()), ":reason": _s(reason),
             ":outcome": _s(OUTCOME[status]), ":queued": _s("queued"),
             ":scheduled": _s("scheduled")}) is True

    def requeued(self, job_key: str, status: JobStatus, now: datetime) -> bool:
        """Put on the messages queue again: looked at again after QUEUED_FOR, counted."""
        return self._update(
            job_key, "SET unsettled_at = :next ADD requeued :one", "#s = :status",
            {":next": _s(_iso(now + QUEUED_FOR)), ":one": {"N": "1"},
             ":status": _s(status.value)}) is True

    def abandon(self, job_key: str, status: JobStatus, now: datetime, reason: str) -> bool:
        """A queued or scheduled job never handled: failed with why, due for the dead-letter
        queue at once (it stays unsettled until `reported`)."""
        return self._update(
            job_key, "SET #s = :failed, reason = :reason, settled_at = :now, unsettled_at = :now "
                     "REMOVE release_bucket",
            "#s = :status",
            {":failed": _s("failed"), ":reason": _s(reason[:1000]), ":now": _s(_iso(now)),
             ":status": _s(status.value)}) is True

    def due(self, now: datetime, days_back: int = 3) -> list[str]:
        """The payloads of scheduled jobs whose send time has come (the last few days)."""
        out: list[str] = []
        for back in range(days_back, -1, -1):
            day = (now.astimezone(UTC).date() - timedelta(days=back)).isoformat()
            for n in range(SHARDS):
                out += [item["payload"]["S"] for item in self._query(
                    "release", "release_bucket = :b AND release_at <= :now",
                    {":b": _s(f"{day}#{n}"), ":now": _s(_iso(now))})]
        return out

    def unsettled(self, now: datetime) -> list[Unsettled]:
        """Rows due for a look: leases run out, failures not yet dead-lettered, jobs queued (or
        past their send time) for longer than QUEUED_FOR."""
        out: list[Unsettled] = []
        for n in range(UNSETTLED_SHARDS):
            for item in self._query("unsettled", "unsettled_bucket = :b AND unsettled_at <= :now",
                                    {":b": _s(str(n)), ":now": _s(_iso(now))}):
                out.append(Unsettled(
                    job_key=item["pk"]["S"].removeprefix("JOB#"), status=item["status"]["S"],
                    attempt=item.get("attempt", {}).get("S"),
                    reason=item.get("reason", {}).get("S"), payload=item["payload"]["S"],
                    requeued=int(item.get("requeued", {}).get("N", "0"))))
        return out

    def _query(self, index: str, condition: str,
               values: dict[str, Any]) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self._table, "IndexName": index,
                                  "KeyConditionExpression": condition,
                                  "ExpressionAttributeValues": values}
        items: list[dict[str, Any]] = []
        while True:
            page = self._db.query(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _update(self, job_key: str, update: str, condition: str,
                values: dict[str, Any]) -> bool | dict[str, Any] | None:
        """True, or the row as it was when the condition failed (None: there is no row)."""
        try:
            self._db.update_item(
                TableName=self._table, Key=keys.job_key(job_key), UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                item: dict[str, Any] | None = e.response.get("Item")
                return item
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
