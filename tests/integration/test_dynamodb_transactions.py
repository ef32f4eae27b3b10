"""The embedded AWS's TransactWriteItems (local/dynamodb_transactions.py) on moto: all or
nothing with the stream untouched by a cancelled transaction, nothing lost to concurrent
writers, and a cost that does not grow with the table."""

from __future__ import annotations

import copy
import socket
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from dialogue.local import dynamodb_transactions

REGION = "eu-west-1"
STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto server, as the embedded AWS runs it (its streams API answers over HTTP)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    dynamodb_transactions.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def db(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset",
                                                  method="POST")).read()
    client = boto3.client("dynamodb", region_name=REGION)
    create_tables(client)
    yield client


def s(value: str) -> dict[str, str]:
    return {"S": value}


def seed(db: Any, rows: int = 3) -> None:
    for i in range(rows):
        db.put_item(TableName="main", Item={"pk": s(f"c{i}"), "sk": s("state"),
                                            "gsi1pk": s("due"), "n": {"N": str(i)}})
        db.put_item(TableName="other", Item={"pk": s(f"o{i}"), "v": s(f"v{i}")})


def snapshot(db: Any) -> dict[str, Any]:
    """Everything a reader can see: every item, the GSI's answers, every stream record."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    seen: dict[str, Any] = {}
    for table in ("main", "other"):
        seen[table] = sorted(db.scan(TableName=table)["Items"], key=repr)
        arn = db.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        seen[f"{table} stream"] = [
            (r["eventName"], r["dynamodb"]["SequenceNumber"], r["dynamodb"]["Keys"],
             r["dynamodb"].get("NewImage"), r["dynamodb"].get("OldImage"))
            for r in streams.get_records(ShardIterator=iterator)["Records"]]
    for key in ("due", "later"):
        seen[f"gsi {key}"] = sorted(db.query(
            TableName="main", IndexName="gsi1", KeyConditionExpression="gsi1pk = :k",
            ExpressionAttributeValues={":k": s(key)})["Items"], key=repr)
    return seen


def actions(fail: bool) -> list[dict[str, Any]]:
    """Puts, updates and deletes across two tables, one new item with a GSI key, one item
    moved to another GSI key; with `fail`, the third action's condition does not hold."""
    return [
        {"Put": {"TableName": "main", "Item": {"pk": s("new"), "sk": s("state"),
                                               "gsi1pk": s("due")},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": "main", "Key": {"pk": s("c0"), "sk": s("state")},
                    "UpdateExpression": "SET gsi1pk = :later ADD n :one",
                    "ExpressionAttributeValues": {":later": s("later"), ":one": {"N": "1"}}}},
        {"Put": {"TableName": "main", "Item": {"pk": s("c1"), "sk": s("state")},
                 "ConditionExpression": "n = :n" if fail else "attribute_exists(pk)",
                 **({"ExpressionAttributeValues": {":n": {"N": "99"}}} if fail else {}),
                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"Delete": {"TableName": "other", "Key": {"pk": s("o0")}}},
        {"Update": {"TableName": "other", "Key": {"pk": s("o-new")},
                    "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {
                        ":v": s("fresh")}}},
        {"ConditionCheck": {"TableName": "other", "Key": {"pk": s("o1")},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ]


def test_a_cancelled_transaction_leaves_items_indexes_and_streams_unchanged(db: Any) -> None:
    seed(db)
    before = snapshot(db)
    reader = stream_reader(db, "main")  # a consumer's position, as the Pipes' relay keeps it
    with pytest.raises(ClientError) as raised:
        db.transact_write_items(TransactItems=actions(fail=True))
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = error["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "ConditionalCheckFailed", "None",
                                            "None", "None"]
    assert reasons[2]["Item"] == {"pk": s("c1"), "sk": s("state"), "gsi1pk": s("due"),
                                  "n": {"N": "1"}}
    assert snapshot(db) == before
    db.put_item(TableName="main", Item={"pk": s("later"), "sk": s("state")})
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]) for r in reader()] == [
        ("INSERT", s("later"))]  # the stream the consumer reads is the table's stream still


def stream_reader(db: Any, table: str) -> Any:
    """A reader positioned at the end of the table's stream now; each call reads what is new."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = db.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = [streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                           ShardIteratorType="LATEST")["ShardIterator"]]

    def read() -> list[dict[str, Any]]:
        page = streams.get_records(ShardIterator=iterator[0])
        iterator[0] = page["NextShardIterator"]
        return list(page["Records"])

    return read


def test_a_committed_transaction_writes_every_item_and_one_record_each(db: Any) -> None:
    seed(db)
    before = snapshot(db)
    db.transact_write_items(TransactItems=actions(fail=False))
    after = snapshot(db)
    assert {"pk": s("new"), "sk": s("state"), "gsi1pk": s("due")} in after["main"]
    assert [i["pk"] for i in after["gsi later"]] == [s("c0")]
    assert {"pk": s("c1"), "sk": s("state")} in after["main"]
    assert {"pk": s("o-new"), "v": s("fresh")} in after["other"]
    assert s("o0") not in [i["pk"] for i in after["other"]]
    new = {t: after[f"{t} stream"][len(before[f"{t} stream"]):] for t in ("main", "other")}
    assert [(r[0], r[2]["pk"]["S"]) for r in new["main"]] == [
        ("INSERT", "new"), ("MODIFY", "c0"), ("MODIFY", "c1")]
    assert [(r[0], r[2]["pk"]["S"]) for r in new["other"]] == [
        ("REMOVE", "o0"), ("INSERT", "o-new")]
    assert new["other"][1][3] == {"pk": s("o-new"), "v": s("fresh")}  # the item, not a bare key
    sequence = [int(r[1]) for r in after["other stream"]]
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))


def test_concurrent_writers_lose_nothing(db: Any) -> None:
    """Threads add to their own counters by transactions, some of which are cancelled, while
    others write plain items: every committed write is there at the end."""
    seed(db, rows=1)
    threads, per_thread = 6, 15

    def work(t: int) -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        for i in range(per_thread):
            client.put_item(TableName="other", Item={"pk": s(f"t{t}-{i}")})
            items = [{"Update": {"TableName": "main", "Key": {"pk": s(f"w{t}"), "sk": s("n")},
                                 "UpdateExpression": "ADD n :one",
                                 "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
            if i % 3 == 2:  # cancelled: its counter must not move
                items.append({"ConditionCheck": {"TableName": "other", "Key": {"pk": s("nope")},
                                                 "ConditionExpression": "attribute_exists(pk)"}})
            try:
                client.transact_write_items(TransactItems=items)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "TransactionCanceledException"

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for t in range(threads):
        item = db.get_item(TableName="main", Key={"pk": s(f"w{t}"), "sk": s("n")})["Item"]
        assert item["n"] == {"N": str(per_thread - per_thread // 3)}
    others = {i["pk"]["S"] for i in db.scan(TableName="other")["Items"]}
    assert {f"t{t}-{i}" for t in range(threads) for i in range(per_thread)} <= others


def copies_per_transaction(db: Any, monkeypatch: pytest.MonkeyPatch, fail: bool) -> Counter[str]:
    """Objects deep-copied (by type, at the top of each copy) during one transaction."""
    copied: Counter[str] = Counter()
    real, depth = copy.deepcopy, [0]

    def counting(obj: Any, *args: Any) -> Any:
        if depth[0] == 0:
            copied[type(obj).__name__] += 1
        depth[0] += 1
        try:
            return real(obj, *args)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(copy, "deepcopy", counting)
    try:
        db.transact_write_items(TransactItems=actions(fail=fail))
    except ClientError:
        assert fail
    monkeypatch.setattr(copy, "deepcopy", real)
    return copied


@pytest.mark.parametrize("fail", [False, True])
def test_a_transaction_copies_only_the_items_it_touches(
        db: Any, monkeypatch: pytest.MonkeyPatch, fail: bool) -> None:
    seed(db, rows=3)
    small = copies_per_transaction(db, monkeypatch, fail)
    for table in ("main", "other"):
        db.delete_table(TableName=table)
    create_tables(db)
    seed(db, rows=300)
    large = copies_per_transaction(db, monkeypatch, fail)
    assert large == small
    assert large["Table"] == 0
    assert large["Item"] <= len(actions(fail))  # at most one copy per action, whatever the size


def create_tables(client: Any) -> None:
    """Two tables with streams; the first with a sort key and a GSI."""
    client.create_table(
        TableName="main", BillingMode="PAY_PER_REQUEST", StreamSpecification=STREAM,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("pk", "sk", "gsi1pk")],
        GlobalSecondaryIndexes=[{"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}]}])
    client.create_table(
        TableName="other", BillingMode="PAY_PER_REQUEST", StreamSpecification=STREAM,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
