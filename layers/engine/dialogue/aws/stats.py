"""Segment statistics: size now, size at the end of each day, entries and exits per day; and
an activity's counts (elements reached, controls, exits) per shop day and in total.

Entries and exits are counted in the same transaction as the membership change (sharded rows
`SEGSTATS#<segment>#<n>`), so they are exact; the size on a past day is the size now minus what
changed since. An activity's counts ride the state's transaction the same way, one row per
counter shard and shop day (`keys.counters_key`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from dialogue.aws.keys import COUNTER_SHARDS


def segment_stats(client: Any, table: str, segment: str, shards: int, today: date,
                  days: int = 30) -> dict[str, Any]:
    size = 0
    for n in range(shards):
        member_key = {":p": {"S": f"SEGMENT#{segment}#{n}"}}
        args: dict[str, Any] = {"TableName": table, "Select": "COUNT",
                                "KeyConditionExpression": "pk = :p",
                                "ExpressionAttributeValues": member_key}
        while True:
            page = client.query(**args)
            size += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    first = today - timedelta(days=days - 1)
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: {"entered": 0, "left": 0})
    for n in range(COUNTER_SHARDS):
        args = {"TableName": table,
                "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": {":p": {"S": f"SEGSTATS#{segment}#{n}"},
                                              ":a": {"S": f"DAY#{first.isoformat()}"},
                                              ":b": {"S": f"DAY#{today.isoformat()}"}}}
        while True:
            page = client.query(**args)
            for item in page["Items"]:
                day = item["sk"]["S"].removeprefix("DAY#")
                for change in ("entered", "left"):
                    per_day[day][change] += int(item.get(change, {}).get("N", "0"))
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    rows, end_size = [], size
    for back in range(days):
        day = (today - timedelta(days=back)).isoformat()
        changes = per_day.get(day, {"entered": 0, "left": 0})
        rows.append({"day": day, "size": end_size, **changes})
        end_size -= changes["entered"] - changes["left"]
    return {"segment": segment, "size": size, "days": rows[::-1]}


def activity_counts(client: Any, table: str, activity: str
                    ) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """(name → total, day → name → count): every counter shard's rows (a query each), summed.

    A `COUNTERS` row (the totals a stack wrote before day rows existed) adds to the totals only.
    """
    total: dict[str, int] = defaultdict(int)
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n in range(COUNTER_SHARDS):
        args: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "pk = :p",
                                "ExpressionAttributeValues": {
                                    ":p": {"S": f"ACTIVITY#{activity}#{n}"}}}
        while True:
            page = client.query(**args)
            for item in page["Items"]:
                day = item["sk"]["S"].removeprefix("DAY#")
                for name, value in item.items():
                    if name.startswith("n_"):
                        total[name[2:]] += int(value["N"])
                        if day != "COUNTERS":
                            per_day[day][name[2:]] += int(value["N"])
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return dict(total), {day: dict(per) for day, per in sorted(per_day.items())}
