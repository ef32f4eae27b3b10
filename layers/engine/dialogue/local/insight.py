"""What a stack holds, read for marketers: `dialogue why`, `dialogue stats`, the HTML report.

Reads only (queries, scans, batch gets) from a CLI or the demo, never from the event path: an
event still costs one read and one write. A deployed stack is found by its CloudFormation name:
its outputs name the tables and the catalog bucket, its parameters give the segment shard count
and the shop's time zone (DescribeStacks returns both Outputs and Parameters:
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dialogue.aws import keys
from dialogue.aws.dynamo import state_from_item
from dialogue.aws.stats import activity_counts
from dialogue.delivery.jobs import control_reason
from dialogue.engine import controls
from dialogue.engine.explain import Message
from dialogue.model.activity import Activity
from dialogue.model.customer import CustomerState

if TYPE_CHECKING:
    from dialogue.local.runtime import LocalAws


@dataclass(frozen=True)
class StackRef:
    """The names and settings of one stack that reading its statistics needs."""

    table: str
    customers_table: str
    segment_shards: int
    time_zone: str
    catalog_bucket: str | None = None

    @classmethod
    def from_cloudformation(cls, cloudformation: Any, stack: str) -> StackRef:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        params = {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
                  for p in described.get("Parameters", [])}
        missing = [k for k in ("TableName", "CustomersTableName") if k not in outputs]
        if missing or "SegmentShards" not in params:
            raise LookupError(f"stack {stack}: no {', '.join(missing or ['SegmentShards'])} "
                              "(is it a dialogue stack?)")
        return cls(outputs["TableName"], outputs["CustomersTableName"],
                   int(params["SegmentShards"]), params.get("TimeZone") or "UTC",
                   outputs.get("CatalogBucketName"))

    @classmethod
    def from_local(cls, aws: LocalAws) -> StackRef:
        params = aws.s.resolver.parameters
        return cls(aws.s.name("Table"), aws.s.name("CustomersTable"),
                   int(params["SegmentShards"]), params.get("TimeZone") or "UTC",
                   aws.s.name("CatalogBucket"))


def scan_prefix(ddb: Any, table: str, prefix: str, **match: str) -> list[dict[str, Any]]:
    """Items whose key starts with `prefix` (and whose string attributes equal `match`)."""
    expression = "begins_with(pk, :p)" + "".join(f" AND #{k} = :{k}" for k in match)
    kwargs: dict[str, Any] = {
        "TableName": table, "FilterExpression": expression,
        "ExpressionAttributeValues": {":p": {"S": prefix},
                                      **{f":{k}": {"S": v} for k, v in match.items()}}}
    if match:
        kwargs["ExpressionAttributeNames"] = {f"#{k}": k for k in match}
    items: list[dict[str, Any]] = []
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def customer_state(ddb: Any, ref: StackRef, subject: str) -> CustomerState | None:
    item = ddb.get_item(TableName=ref.customers_table, Key=keys.state_key(subject),
                        ConsistentRead=True).get("Item")
    return state_from_item(item) if item else None


RECENT_ENTRIES = 5  # a repeatable activity: the message rows of its last few entries


def customer_messages(ddb: Any, ref: StackRef, state: CustomerState,
                      activities: list[Activity]) -> dict[str, list[Message]]:
    """activity → what delivery recorded for the customer's message jobs, latest entry first.

    A job's key is known from the state (activity, element, subject, entry, the state's
    lifetime: `MessageQueued.key`), so the rows are fetched by key (BatchGetItem, 100 keys a
    call), never searched for."""
    wanted: dict[str, tuple[str, str, int]] = {}
    for activity in activities:
        journey = state.journeys.get(activity.id)
        if journey is None or not journey.entries:
            continue
        for el in activity.elements:
            if el.type != "send_message":
                continue
            for entry in range(journey.entries, max(0, journey.entries - RECENT_ENTRIES), -1):
                key = f"{activity.id}/{el.id}/{state.subject}/{entry}"
                key = f"{key}/{state.incarnation}" if state.incarnation else key
                wanted[key] = (activity.id, el.id, entry)
    found: dict[tuple[str, str], tuple[int, Message]] = {}
    for item in _batch_get(ddb, ref.table, [keys.job_key(k) for k in wanted]):
        activity_id, element_id, entry = wanted[item["pk"]["S"].removeprefix("JOB#")]
        if entry > found.get((activity_id, element_id), (0, None))[0]:
            found[(activity_id, element_id)] = (entry, Message(
                element_id, _s(item, "status"), item.get("reason", {}).get("S"),
                _local(item.get("release_at", {}).get("S"), ref.time_zone)))
    out: dict[str, list[Message]] = {}
    for (activity_id, _), (_, message) in found.items():
        out.setdefault(activity_id, []).append(message)
    return out


def _batch_get(ddb: Any, table: str, wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 100 keys a call; what is returned as UnprocessedKeys (throttling, size) is asked
    again after a growing pause, as AWS advises:
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html"""
    import time

    items: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 100):
        request: dict[str, Any] = {table: {"Keys": wanted[i:i + 100]}}
        for attempt in range(100):
            answer = ddb.batch_get_item(RequestItems=request)
            items += answer["Responses"].get(table, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2 ** attempt, 5.0))
        else:
            raise RuntimeError(f"{table}: keys still unprocessed after 100 attempts")
    return items


def counters(ddb: Any, ref: StackRef, activity_id: str) -> dict[str, int]:
    """element (or control, `@…`) → customers who reached it: every shard's rows summed."""
    return activity_counts(ddb, ref.table, activity_id)[0]


@dataclass
class Rows:
    """The rows several activities' statistics share, read once (a scan each)."""

    jobs: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    states: list[CustomerState] | None

    @classmethod
    def read(cls, ddb: Any, ref: StackRef, waiting: bool = True,
             activity_id: str | None = None) -> Rows:
        match = {"activity_id": activity_id} if activity_id else {}
        states = [state_from_item(item) for item in scan_prefix(ddb, ref.customers_table, "")
                  if item.get("sk", {}).get("S") == "STATE"] if waiting else None
        return cls(scan_prefix(ddb, ref.table, "JOB#", **match),
                   scan_prefix(ddb, ref.table, "COUPON#", **match), states)


def activity_stats(ddb: Any, ref: StackRef, activity: Activity, waiting: bool = True,
                   rows: Rows | None = None, days: int = 30) -> dict[str, Any]:
    """Reached per element (per shop day and in total), entries and exits (by reason), what
    the controls did (held, skipped, capped, not entered: with the reason), the holdout beside
    the treated group, messages by outcome and reason, coupons, and (a scan of the customer
    states) who waits now and where. `days`: the last days with counts, each in full."""
    rows = rows or Rows.read(ddb, ref, waiting, activity.id)
    reached, per_day = activity_counts(ddb, ref.table, activity.id)
    jobs = [j for j in rows.jobs if _s(j, "activity_id") == activity.id]
    # a sent job keeps the reason it was scheduled with ("release at …"): not why it went
    outcomes = Counter((_s(j, "status"), "" if _s(j, "status") == "sent"
                        else _reason(j.get("reason", {}).get("S") or "")) for j in jobs)
    stats: dict[str, Any] = {
        "activity": activity.id, "name": activity.name, "time_zone": ref.time_zone,
        "entries": reached.get(activity.entry.id, 0),
        "reached": {e.id: reached.get(e.id, 0) for e in activity.elements},
        "exits": _exits(reached),
        "per_day": [{"day": day, "entries": n.get(activity.entry.id, 0),
                     "reached": {e.id: n[e.id] for e in activity.elements if n.get(e.id)},
                     "exits": _exits(n)} for day, n in list(per_day.items())[-days:]],
        "controls": _controls(reached, jobs),
        "holdout": _holdout(reached, activity),
        "messages": [{"status": s, "reason": r, "count": n}
                     for (s, r), n in sorted(outcomes.items())],
        "messages_per_day": dict(sorted(Counter(_day(j) for j in jobs).items())),
        "coupons": sum(1 for c in rows.coupons if _s(c, "activity_id") == activity.id)}
    if rows.states is not None:
        where: Counter[str] = Counter()
        for state in rows.states:
            journey = state.journeys.get(activity.id)
            for instance in journey.waiting if journey else []:
                where[instance.element] += 1
        stats["waiting"] = dict(where)
    return stats


def _exits(counts: dict[str, int]) -> dict[str, int]:
    """How runs ended, by reason (`controls.EXITS`), those that happened."""
    return {label: counts[name] for name, label in controls.EXITS.items() if counts.get(name)}


def _controls(counts: dict[str, int], jobs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What the journey controls did, each with its reason: entries refused, messages capped
    (`@capped:` counts, held or skipped), held (every hold a job went through, its `held` set,
    and guests' messages) and skipped (suppressed by a control)."""
    held: Counter[str] = Counter()
    for job in jobs:
        for reason in job.get("held", {}).get("SS", []):
            held[reason] += 1
    held["a guest's message, until a login links the browser"] += counts.get(
        controls.GUEST_HELD, 0)
    skipped = Counter(control_reason(_s(j, "reason")) for j in jobs
                      if _s(j, "status") == "suppressed")
    skipped.pop(None, None)
    skipped["a guest's message (the activity drops them)"] += counts.get(controls.GUEST_DROPPED, 0)
    return {
        "not_entered": {k.removeprefix(controls.NOT_ENTERED).replace("_", " "): n
                        for k, n in counts.items() if k.startswith(controls.NOT_ENTERED)},
        "capped": {k.removeprefix("@capped:"): n for k, n in counts.items()
                   if k.startswith("@capped:")},
        "held": {k: n for k, n in sorted(held.items()) if n},
        "skipped": {str(k): n for k, n in sorted(skipped.items(), key=str) if n}}


def _holdout(counts: dict[str, int], activity: Activity) -> dict[str, Any] | None:
    """The control group beside the customers who got the actions: entries, goals, conversion."""
    if activity.holdout is None and not counts.get(controls.HOLDOUT):
        return None
    rate = controls.conversion(counts, activity)
    held = counts.get(controls.HOLDOUT, 0)
    return {"percent": float(activity.holdout.percent) if activity.holdout else None,
            "treated": {"entries": counts.get(activity.entry.id, 0) - held,
                        "reached_goal": counts.get(controls.GOAL, 0),
                        "conversion": rate["treated"]},
            "holdout": {"entries": held, "reached_goal": counts.get(controls.HOLDOUT_GOAL, 0),
                        "conversion": rate["holdout"]}}


def _reason(reason: str) -> str:
    """A job's reason as grouped: a control's without its release time."""
    if reason.startswith("release at "):
        return "waiting for the daily send time"
    return reason if control_reason(reason) is None else reason.split(", release at ")[0]


def _local(at: str | None, zone: str) -> str | None:
    """An ISO time as the shop reads it: `2026-12-05 09:00 Europe/Paris`."""
    if not at:
        return None
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return f"{datetime.fromisoformat(at).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def _s(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _day(job: dict[str, Any]) -> str:
    payload = job.get("payload", {}).get("S")
    return str(json.loads(payload).get("at", ""))[:10] if payload else ""
