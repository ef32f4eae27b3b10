"""A customer's data on request: everything erased (`erase`), or written out (`export`).

A `CustomerDeleted` event or an operator's action (`dialogue customer delete|export ID`), rare:
it scans the main table for the rows that name the customer or one of their linked browsers (a
scan reads the whole table, paid per 4 KB read; no index is kept for a once-a-year request).
Order matters for erasure (`dialogue.identity.erase_customer`): the state becomes a tombstone
first (`engine.forget`, which also removes segment memberships), so no event, timer or retry
running meanwhile can write a new row for the customer; then the rows go.

What goes: the customer's state (a tombstone stays: the id and the deletion time, to refuse
late events), the linked browsers' guest states, message jobs (their payload holds the event and
coupons), timer rows, segment member rows, coupon rows (their key names the customer; a row
cannot be re-keyed without its stream announcing a new coupon: the shop's own order records keep
what was redeemed). Aggregates (counters, segment statistics, RFM histogram) hold no id and stay.
Suppression entries are keyed by a hash of the address and stay: keeping an opt-out is what the
law asks (GDPR art. 17(3)(b): a legal obligation), and they name nobody without the address.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dialogue.aws import keys
from dialogue.aws.dynamo import DynamoCustomerStore, state_from_item
from dialogue.model.customer import CustomerState
from dialogue.ports import Conflict


class DynamoCustomerRows:
    """The `CustomerRows` port on the stack's tables: guest states and the main table's rows
    naming a customer. Every delete may be repeated (deleting a missing item succeeds); no
    writer can bring a row back once the state is a tombstone: job updates are conditional on
    the row existing (`aws.jobs`), timers wake nobody, member rows come only with a state."""

    def __init__(self, db: Any, table: str, customers_table: str):
        self._db, self._table, self._customers = db, table, customers_table

    def erase_guest(self, subject: str, customer_id: str, attempts: int = 5) -> bool:
        """Conditional on the version read: a login linking the browser to somebody else
        meanwhile (in the guest's group) wins, and its state is left alone."""
        for _ in range(attempts):
            item = self._db.get_item(TableName=self._customers, Key=keys.state_key(subject),
                                     ConsistentRead=True).get("Item")
            if item is None or state_from_item(item).linked_to not in (customer_id, None):
                return False
            try:
                self._db.delete_item(
                    TableName=self._customers, Key=keys.state_key(subject),
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={":v": item["version"]})
                return True
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        raise Conflict(subject)

    def erase_rows(self, subjects: list[str]) -> dict[str, int]:
        done: dict[str, int] = {}
        for item in rows_of(self._db, self._table, subjects):
            kind = item.get("kind", {}).get("S", "row")
            self._db.delete_item(TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]})
            done[kind] = done.get(kind, 0) + 1
        return done


def erase(store: DynamoCustomerStore, db: Any, table: str, customers_table: str,
          customer_id: str, now: datetime) -> dict[str, int]:
    """Erase everything held about `customer_id` (the operator's command); returns what was
    removed, by kind. The same use case as a `CustomerDeleted` event."""
    from dialogue.identity import erase_customer

    return erase_customer(store, DynamoCustomerRows(db, table, customers_table), customer_id,
                          f"erase:{now.isoformat()}", now, now, lambda *_: None)[1]


def export(store: DynamoCustomerStore, db: Any, table: str, customer_id: str
           ) -> dict[str, Any]:
    """Everything held about `customer_id` as one JSON-ready document."""
    subject = f"customer:{customer_id}"
    state = store.load(subject)
    subjects = _subjects(state)
    guests = [store.load(g) for g in subjects[1:]]
    return {
        "customer_id": customer_id,
        "state": state.model_dump(mode="json", exclude={"version"}) if state.version else None,
        "browsers": [g.model_dump(mode="json", exclude={"version"}) for g in guests
                     if g.version and g.linked_to == customer_id],
        "rows": [_plain(item) for item in rows_of(db, table, subjects)],
    }


def _subjects(state: CustomerState) -> list[str]:
    return [state.subject, *(f"guest:{pid}" for pid in state.browsers)]


def rows_of(db: Any, table: str, subjects: list[str]) -> Iterator[dict[str, Any]]:
    """Every main-table row whose `subject` is one of `subjects` (a filtered scan)."""
    names = {f":s{i}": {"S": s} for i, s in enumerate(subjects)}
    args: dict[str, Any] = {"TableName": table, "ConsistentRead": True,
                            "FilterExpression": f"subject IN ({', '.join(names)})",
                            "ExpressionAttributeValues": names}
    while True:
        page = db.scan(**args)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain JSON values (strings, numbers as text, binaries left out)."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        (kind, inner), = value.items()
        if kind in ("S", "N", "BOOL"):
            out[name] = inner
    return out
