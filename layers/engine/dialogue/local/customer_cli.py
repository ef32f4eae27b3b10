"""`dialogue customer delete|export ID`: a customer's data on request, for an operator.

Against the stack the usual AWS settings point at (AWS_PROFILE, AWS_ENDPOINT_URL for a served
stack); the table names from the options or DIALOGUE_TABLE / DIALOGUE_CUSTOMERS_TABLE.
"""

from __future__ import annotations

import json
import sys

from dialogue import bootstrap
from dialogue.local.inputs import UsageError


def customer_request(action: str, customer_id: str, table: str | None,
                     customers_table: str | None, shards: int) -> int:
    import boto3

    from dialogue.aws.dynamo import DynamoCustomerStore
    from dialogue.aws.erase import erase, export

    if not table or not customers_table:
        raise UsageError("--table and --customers-table (or DIALOGUE_TABLE and "
                         "DIALOGUE_CUSTOMERS_TABLE) are needed")
    db = boto3.client("dynamodb")
    store = DynamoCustomerStore(db, table, shards, customers_table=customers_table)
    if action == "export":
        json.dump(export(store, db, table, customer_id), sys.stdout, indent=2,
                  ensure_ascii=False)
        print()
        return 0
    done = erase(store, db, table, customers_table, customer_id, bootstrap.now())
    print("deleted: " + ", ".join(f"{n} {kind}" for kind, n in sorted(done.items())))
    return 0
