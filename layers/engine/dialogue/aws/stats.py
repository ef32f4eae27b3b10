"""Segment statistics: size now, size at the end of each day, entries and exits per day.

Entries and exits are counted in the same transaction as the membership change (sharded rows
`SEGSTATS#<segment>#<n>`), so they are exact; the size on a past day is the size now minus what
changed since.
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
