"""The DynamoDB adapter on moto: conditional writes and the effects that ride them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.model.customer import CustomerState
from dialogue.model.effects import (
    CouponIssued,
    ElementReached,
    MessageQueued,
    SegmentAdded,
    SegmentRemoved,
)
from dialogue.ports import Conflict

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
BASE = {"activity_id": "act", "subject": "customer:frank", "entry": 1, "at": AT}


def items(db: Any) -> dict[str, dict[str, Any]]:
    return {f"{i['pk']['S']}|{i['sk']['S']}": i for i in db.scan(TableName="t")["Items"]}


def test_a_new_customer_is_created_then_read_back_at_version_1(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    assert state.version == 0
    state.total_spent += 10
    store.commit(state, [])

    again = store.load("customer:frank")
    assert again.version == 1 and again.total_spent == 10


def test_a_write_from_a_stale_read_is_a_conflict_and_changes_nothing(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    first, second = store.load("customer:frank"), store.load("customer:frank")
    first.order_count = 1
    store.commit(first, [])
    second.order_count = 7
    with pytest.raises(Conflict):
        store.commit(second, [MessageQueued(**BASE, element_id="m", channel="email",
                                            template="t", event_id="e")])

    assert store.load("customer:frank").order_count == 1
    assert not any(k.startswith("JOB#") for k in items(db))  # the effect did not ride alone


def test_effects_are_written_with_the_state_in_one_transaction(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    store.commit(state, [
        ElementReached(**BASE, element_id="t"), ElementReached(**BASE, element_id="m"),
        MessageQueued(**BASE, element_id="m", channel="email", template="welcome", event_id="e"),
        CouponIssued(**BASE, element_id="c", promotion="TEN", code="K7XQ2M9PLR4T",
                     expires_at=AT + timedelta(days=30)),
        SegmentAdded(**BASE, element_id="s", segment="golfers"),
    ])

    stored = items(db)
    job = next(v for k, v in stored.items() if k.startswith("JOB#act/m/customer:frank/1"))
    assert job["kind"]["S"] == "job" and '"template":"welcome"' in job["payload"]["S"]
    coupon = next(v for k, v in stored.items() if k.startswith("COUPON#"))
    assert coupon["promotion"]["S"] == "TEN" and coupon["code"]["S"] == "K7XQ2M9PLR4T"
    member = next(v for k, v in stored.items() if k.startswith("SEGMENT#golfers#"))
    assert member["sk"]["S"] == "customer:frank"
    counters = next(v for k, v in stored.items()
                    if k.startswith("ACTIVITY#act#") and k.endswith(f"|DAY#{AT.date()}"))
    assert counters["n_t"]["N"] == "1" and counters["n_m"]["N"] == "1"


def test_counters_are_kept_per_shop_day_in_the_one_transaction_and_summed_by_the_stats(
        db: Any) -> None:
    """23:30 UTC is already the next day in Paris: the counts go to that shop day's row, one
    counter row per activity in the transaction (as the totals row was), and the statistics read
    each day and the totals, a totals row written before day rows included."""
    from zoneinfo import ZoneInfo

    from dialogue.aws.stats import activity_counts

    store = DynamoCustomerStore(db, "t", segment_shards=4, zone=ZoneInfo("Europe/Paris"))
    late = AT.replace(hour=23, minute=30)
    sent: list[int] = []
    db.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems",
                            lambda params, **_: sent.append(len(params["TransactItems"])))
    store.commit(store.load("customer:frank"), [
        ElementReached(**BASE, element_id="t"), ElementReached(**BASE, element_id="m")])
    store.commit(store.load("customer:frank"), [
        ElementReached(**{**BASE, "at": late}, element_id="t"),
        ElementReached(**{**BASE, "at": late}, element_id="@exit:completed")])
    assert sent == [2, 2]  # the state and one counter row, each time
    shard = next(k for k in items(db) if k.startswith("ACTIVITY#act#")).split("|")[0]
    db.put_item(TableName="t", Item={"pk": {"S": shard}, "sk": {"S": "COUNTERS"},
                                     "n_t": {"N": "5"}})  # written before day rows existed

    total, per_day = activity_counts(db, "t", "act")

    assert per_day == {"2026-12-01": {"t": 1, "m": 1},
                       "2026-12-02": {"t": 1, "@exit:completed": 1}}
    assert total == {"t": 7, "m": 1, "@exit:completed": 1}


def test_removing_from_a_segment_deletes_the_member_row(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    store.commit(state, [SegmentAdded(**BASE, element_id="s", segment="golfers")])
    state = store.load("customer:frank")
    store.commit(state, [SegmentRemoved(**BASE, element_id="r", segment="golfers")])

    assert not any(k.startswith("SEGMENT#") for k in items(db))


def test_the_state_document_is_stored_compressed(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = CustomerState(subject="customer:frank")
    for n in range(200):
        state.remember(f"event-{n:04d}", AT)
    store.commit(state, [])

    raw = items(db)["CUSTOMER#frank|STATE"]["doc"]["B"]
    assert len(raw) < len(state.model_dump_json()) / 2
    assert store.load("customer:frank").processed == state.processed


def thanks(n: int, entry: int = 1, incarnation: str = "") -> list[Any]:
    """n activities each reaching three elements, issuing a coupon and queueing an e-mail."""
    effects: list[Any] = []
    for i in range(n):
        base = {**BASE, "activity_id": f"act-{i:02d}", "entry": entry, "incarnation": incarnation}
        effects += [ElementReached(**base, element_id=e) for e in ("ordered", "coupon", "mail")]
        effects += [CouponIssued(**base, element_id="coupon", promotion=f"P{i}",
                                 code=f"CODE{i:08d}", expires_at=AT + timedelta(days=30)),
                    MessageQueued(**base, element_id="mail", channel="email", template="t",
                                  event_id="e")]
    return effects


def test_a_decision_beyond_one_transaction_commits_whole_with_the_state(db: Any) -> None:
    calls: list[int] = []
    real = db.transact_write_items

    def counted(**kwargs: Any) -> Any:
        calls.append(len(kwargs["TransactItems"]))
        return real(**kwargs)

    db.transact_write_items = counted
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    store.commit(store.load("customer:frank"), thanks(34))  # 103 writes

    stored = items(db)
    assert sum(k.startswith("JOB#") for k in stored) == 34
    assert sum(k.startswith("COUPON#") for k in stored) == 34
    counters = [v for k, v in stored.items() if k.startswith("ACTIVITY#")]
    assert sum(int(c["n_mail"]["N"]) for c in counters) == 34
    assert store.load("customer:frank").version == 1
    assert max(calls) <= 100 and len(calls) == 2


def test_a_decision_whose_relayed_rows_exceed_a_transaction_is_refused_with_the_reason(
        db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    with pytest.raises(ValueError, match="at most 99 fit"):
        store.commit(store.load("customer:frank"), thanks(50))
    assert items(db) == {}


def test_a_lost_state_starts_a_new_lifetime_whose_rows_never_meet_the_old(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    first = store.load("customer:frank")
    store.commit(first, thanks(1, incarnation=first.incarnation))
    db.delete_item(TableName="t", Key={"pk": {"S": "CUSTOMER#frank"}, "sk": {"S": "STATE"}})

    again = store.load("customer:frank")
    assert again.version == 0 and again.incarnation != first.incarnation
    store.commit(again, thanks(1, incarnation=again.incarnation))  # entry 1 again

    assert sum(k.startswith("JOB#") for k in items(db)) == 2
    assert sum(k.startswith("COUPON#") for k in items(db)) == 2


def test_an_effect_row_written_before_is_left_as_it_is_and_the_state_commits(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    state = store.load("customer:frank")
    store.commit(state, thanks(1, incarnation=state.incarnation))
    old = items(db)["CUSTOMER#frank|STATE"]
    store.commit(store.load("customer:frank"), [])
    db.put_item(TableName="t", Item=old)  # the state restored to before its effects

    store.commit(store.load("customer:frank"), thanks(1, incarnation=state.incarnation))

    assert store.load("customer:frank").version == 2
    assert sum(k.startswith("JOB#") for k in items(db)) == 1
