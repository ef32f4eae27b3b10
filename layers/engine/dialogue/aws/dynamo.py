"""Customer state in DynamoDB: one GetItem, then one conditional write that carries the effects.

The state document is compressed JSON (`state_codec`; write units are per KB). Every write is
conditional on the version read, so two concurrent events for one customer can never lose an
update; effects ride the same TransactWriteItems, so they exist if and only if the state that
caused them does. A decision too large for one transaction is split (`transactions`): the rows
the stream relays always commit with the state; the rest go before (idempotent) or after (counts).
Effect keys carry the state's incarnation: a state created again (its item lost) starts a new
lifetime whose rows never meet the old ones.
Message jobs are outbox rows: the table's stream relays them to the messages queue (through
DispatchFunction). A wait's timer row is one too: the dispatcher hands it to the function that
arms its bucket's wake-up.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from dialogue.aws import keys, state_codec, transactions
from dialogue.aws.jobs import QUEUED_FOR, unsettled_fields
from dialogue.engine.rfm import rfm_delta
from dialogue.engine.timers import TimerRef, bucket_end
from dialogue.model.customer import CustomerState
from dialogue.model.effects import (
    AnyEffect,
    CouponIssued,
    ElementReached,
    MessageQueued,
    SegmentAdded,
    SegmentRemoved,
    WaitStarted,
)
from dialogue.observability import logger
from dialogue.ports import Conflict

JOB_RETENTION = timedelta(days=30)
UTC_ZONE = ZoneInfo("UTC")
TIMER_RETENTION = timedelta(days=14)  # a fired bucket's rows are only read by late wake-ups


def state_from_item(item: dict[str, Any]) -> CustomerState:
    """A state written before incarnations existed gets one now, kept from its next write."""
    state = state_codec.decode(item["doc"]["B"], int(item["version"]["N"]))
    if not state.incarnation:
        state.incarnation = new_incarnation()
    return state


def new_incarnation() -> str:
    """A state's lifetime: random, so that a state created again never reuses effect keys."""
    return secrets.token_hex(8)


def zulu(at: datetime) -> str:
    """ISO UTC ending in Z: what Step Functions' TimestampPath takes."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DynamoCustomerStore:
    def __init__(self, client: Any, table: str, segment_shards: int,
                 customers_table: str | None = None, bucket_minutes: int = 15,
                 timer_shards: int = 16, zone: ZoneInfo = UTC_ZONE):
        self._db, self._table, self._shards = client, table, segment_shards
        self._customers = customers_table or table
        self._bucket_minutes, self._timer_shards = bucket_minutes, timer_shards
        self._zone = zone  # the shop's day, for segment and activity statistics

    def load(self, subject: str) -> CustomerState:
        item = self._db.get_item(TableName=self._customers, Key=keys.state_key(subject),
                                 ConsistentRead=True).get("Item")
        if item is None:
            return CustomerState(subject=subject, incarnation=new_incarnation())
        return state_from_item(item)

    def commit(self, state: CustomerState, effects: list[AnyEffect],
               before: CustomerState | None = None,
               also: tuple[CustomerState, CustomerState] | None = None) -> None:
        """`before`: the state as read, to move the customer between RFM histogram bins.
        More writes than one transaction takes are split (`transactions`): the state last.
        `also`: a second state (new, as read) committed in the same transaction, conditional
        on its own version: the guest a login merges (`engine.identity`)."""
        put = self._state_put(state)
        writes = self._effect_writes(state.subject, effects)
        moves = [(before, state)] if before is not None else []
        if also is not None:
            writes["state/also"] = {"Put": self._state_put(also[0])}
            moves.append((also[1], also[0]))
        for n, rfm in enumerate(self._rfm_updates(moves).values()):
            writes[f"rfm/{n}" if n else "rfm"] = rfm
        if not writes:
            try:
                self._db.put_item(**put)
            except ClientError as e:
                if _code(e) == "ConditionalCheckFailedException":
                    raise Conflict(state.subject) from e
                raise
            return
        early, final, late = transactions.split(put, writes)
        for items in early:
            self._transact(state.subject, items)
        self._transact(state.subject, final, state_first=True)
        for items in late:
            self._transact(state.subject, items)

    def _transact(self, subject: str, items: list[dict[str, Any]],
                  state_first: bool = False) -> None:
        """One transaction. A new job or coupon row that exists already (its key names the
        state's lifetime, activity, element and entry) is that same effect written before: it
        is left out and the rest written, never retried for ever."""
        while True:
            try:
                self._db.transact_write_items(TransactItems=items)
                return
            except ClientError as e:
                if _code(e) != "TransactionCanceledException":
                    raise
                codes = [r.get("Code") for r in e.response.get("CancellationReasons") or []]
                # The state item is first: its condition failing means a newer version exists.
                # TransactionConflict: another transaction was writing one of the same items.
                if (state_first and codes[:1] == ["ConditionalCheckFailed"]) \
                        or "TransactionConflict" in codes or _state_failed(items, codes):
                    raise Conflict(subject) from e
                existing = [i for i, (item, code) in enumerate(zip(items, codes, strict=False))
                            if code == "ConditionalCheckFailed" and "Put" in item
                            and item["Put"]["Item"].get("kind", {}).get("S") in ("job", "coupon")]
                if not existing:
                    raise
                logger.warning("effect rows written before, left out: %s",
                               ", ".join(items[i]["Put"]["Item"]["kind"]["S"] for i in existing))
                items = [item for i, item in enumerate(items) if i not in set(existing)]

    def _rfm_updates(self, moves: list[tuple[CustomerState, CustomerState]]
                     ) -> dict[str, dict[str, Any]]:
        """One update per histogram shard touched: DynamoDB cancels a TransactWriteItems with
        more than one action on the same item (TransactionCanceledException,
        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html)."""
        deltas: dict[str, tuple[str, dict[str, int]]] = {}
        for before, after in moves:
            shard_pk = keys.rfm_key(after.subject)["pk"]["S"]
            _, per = deltas.setdefault(shard_pk, (after.subject, {}))
            for name, n in rfm_delta(before, after, self._zone).items():
                per[name] = per.get(name, 0) + n
        updates = {pk: self._rfm_update(subject, per) for pk, (subject, per) in deltas.items()}
        return {pk: update for pk, update in updates.items() if update is not None}

    def _rfm_update(self, subject: str, delta: dict[str, int]) -> dict[str, Any] | None:
        delta = {k: n for k, n in delta.items() if n}
        if not delta:
            return None
        names = {f"#b{i}": name for i, name in enumerate(delta)}
        return {"Update": {
            "TableName": self._table, "Key": keys.rfm_key(subject),
            "UpdateExpression": "ADD " + ", ".join(f"#b{i} :b{i}" for i in range(len(delta))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {f":b{i}": {"N": str(n)}
                                          for i, n in enumerate(delta.values())}}}

    def _state_put(self, state: CustomerState) -> dict[str, Any]:
        item = {**keys.state_key(state.subject), "kind": {"S": "state"},
                "version": {"N": str(state.version + 1)}, "doc": {"B": state_codec.encode(state)}}
        put: dict[str, Any] = {"TableName": self._customers, "Item": item}
        if state.version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(state.version)}}
        return put

    def _effect_writes(self, subject: str,
                       effects: list[AnyEffect]) -> dict[str, dict[str, Any]]:
        """One write per item touched; counters folded into one update per activity and shop
        day (a decision's effects share one instant: one row per activity, as before)."""
        writes: dict[str, dict[str, Any]] = {}
        counters: dict[tuple[str, str], dict[str, int]] = {}
        stats: dict[tuple[str, str], dict[str, int]] = {}  # (pk, sk) → entered/left
        for effect in effects:
            match effect:
                case ElementReached():
                    day = effect.at.astimezone(self._zone).date().isoformat()
                    per = counters.setdefault((effect.activity_id, day), {})
                    per[effect.element_id] = per.get(effect.element_id, 0) + 1
                case MessageQueued():
                    writes[f"job/{effect.key}"] = self._new(keys.job_key(effect.key), {
                        "kind": {"S": "job"}, "status": {"S": "queued"},
                        "subject": {"S": subject}, "activity_id": {"S": effect.activity_id},
                        "channel": {"S": effect.channel}, "template": {"S": effect.template},
                        "payload": {"S": effect.model_dump_json()},
                        "expires_at": {"N": _epoch(effect.at + JOB_RETENTION)},
                        # watched by the reconciliation until send_message handles it
                        **unsettled_fields(effect.key, effect.at + QUEUED_FOR)})
                case CouponIssued():
                    writes[f"coupon/{effect.key}"] = self._new(keys.coupon_key(effect.key), {
                        "kind": {"S": "coupon"}, "outcome": {"S": "CouponIssued"},
                        "code": {"S": effect.code},
                        "promotion": {"S": effect.promotion}, "subject": {"S": subject},
                        "activity_id": {"S": effect.activity_id},
                        "element_id": {"S": effect.element_id},
                        "issued_at": {"S": effect.at.isoformat()},
                        "expires_at_iso": {"S": effect.expires_at.isoformat()}})
                case SegmentAdded():  # (a login's merge also moves the guest's: its subject)
                    member = effect.subject or subject
                    item = {**keys.segment_member_key(effect.segment, member, self._shards),
                            "kind": {"S": "member"}, "segment": {"S": effect.segment},
                            "subject": {"S": member}, "outcome": {"S": "SegmentEntered"},
                            "since": {"S": effect.at.isoformat()},
                            "by": {"S": effect.activity_id or "rule"}}
                    if effect.until:
                        item["expires_at"] = {"N": _epoch(effect.until)}
                    writes[f"seg/{effect.segment}/{member}"] = {"Put": {
                        "TableName": self._table, "Item": item}}
                case SegmentRemoved():
                    member = effect.subject or subject
                    key = keys.segment_member_key(effect.segment, member, self._shards)
                    writes[f"seg/{effect.segment}/{member}"] = {"Delete": {
                        "TableName": self._table, "Key": key}}
                case WaitStarted():
                    timer = TimerRef.from_effect(effect)
                    bucket = zulu(bucket_end(effect.due_at, self._bucket_minutes))
                    key = keys.timer_key(bucket, keys.shard(timer.key, self._timer_shards),
                                         timer.key)
                    writes[f"timer/{timer.key}"] = {"Put": {"TableName": self._table, "Item": {
                        **key, "kind": {"S": "timer"}, "bucket": {"S": bucket},
                        "subject": {"S": subject}, "activity_id": {"S": effect.activity_id},
                        "entry": {"N": str(effect.entry)}, "element_id": {"S": effect.element_id},
                        "due_at": {"S": effect.due_at.isoformat()},
                        "expires_at": {"N": _epoch(effect.due_at + TIMER_RETENTION)}}}}
            if isinstance(effect, SegmentAdded | SegmentRemoved):
                day = effect.at.astimezone(self._zone).date().isoformat()
                # One update per statistics item: a guest's exit and the customer's entry may
                # fall on the same shard (one action per item in a transaction).
                key = keys.segment_stats_key(effect.segment, day, effect.subject or subject)
                tally = stats.setdefault((key["pk"]["S"], key["sk"]["S"]), {})
                change = "entered" if isinstance(effect, SegmentAdded) else "left"
                tally[change] = tally.get(change, 0) + 1
        for (activity_id, day), per in counters.items():
            names = {f"#e{i}": f"n_{element}" for i, element in enumerate(per)}
            values = {f":e{i}": {"N": str(n)} for i, n in enumerate(per.values())}
            writes[f"cnt/{activity_id}/{day}"] = {"Update": {
                "TableName": self._table, "Key": keys.counters_key(activity_id, subject, day),
                "UpdateExpression": "ADD " + ", ".join(f"#e{i} :e{i}" for i in range(len(per))),
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}
        for (pk, sk), per in stats.items():
            writes[f"stats/{pk}/{sk}"] = {"Update": {
                "TableName": self._table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                "UpdateExpression": "ADD " + ", ".join(f"#{k} :{k}" for k in per),
                "ExpressionAttributeNames": {f"#{k}": k for k in per},  # LEFT is a reserved word
                "ExpressionAttributeValues": {f":{k}": {"N": str(n)} for k, n in per.items()}}}
        return writes

    def _new(self, key: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": {**key, **attrs},
                        "ConditionExpression": "attribute_not_exists(pk)"}}


def _state_failed(items: list[dict[str, Any]], codes: list[str | None]) -> bool:
    """A state item (the second state of a merge) whose version condition failed: the reasons
    are ordered as the request's items, a null code for the others
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html)."""
    return any(code == "ConditionalCheckFailed" and "Put" in item
               and item["Put"]["Item"].get("kind", {}).get("S") == "state"
               for item, code in zip(items, codes, strict=False))


def _code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def _epoch(at: datetime) -> str:
    return str(int(at.timestamp()))


class DynamoRfm:
    """The R/F/M histogram: merged from its shards once per daily run, kept as that day's
    snapshot so every worker scores customers against the same quintiles."""

    def __init__(self, client: Any, table: str):
        self._db, self._table = client, table

    def merged(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for n in range(keys.RFM_SHARDS):
            item = self._db.get_item(TableName=self._table, ConsistentRead=True, Key={
                "pk": {"S": f"RFM#{n}"}, "sk": {"S": "HIST"}}).get("Item", {})
            for name, value in item.items():
                if name[:2] in ("r_", "f_", "m_"):
                    total[name] = total.get(name, 0) + int(value["N"])
        return {k: n for k, n in total.items() if n > 0}

    def save_snapshot(self, day: str, histogram: dict[str, int]) -> None:
        self._db.put_item(TableName=self._table, Item={
            **keys.rfm_snapshot_key(day), "kind": {"S": "rfm_snapshot"},
            "histogram": {"S": json.dumps(histogram, separators=(",", ":"))}})

    def snapshot(self, day: str) -> dict[str, int] | None:
        item = self._db.get_item(TableName=self._table,
                                 Key=keys.rfm_snapshot_key(day)).get("Item")
        return json.loads(item["histogram"]["S"]) if item else None
