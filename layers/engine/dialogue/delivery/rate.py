"""Per-activity rate limits, kept by the release function: large sends are spread, not dropped.

Every message of a rate-limited activity goes through the release function (send_message parks
it, `plan`). The release function runs every RELEASE_EVERY; in each run an activity may release
`messages × RELEASE_EVERY / per` of its due messages (at least one), oldest first; the others
are parked again for the runs after, each at the run its place in line gives it, so each is
rescheduled once. The rate holds per run: within a run the messages go as fast as send_message
takes them (the account's SES rate, `RateLimiter`), not evenly through the 15 minutes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from dialogue.model.effects import MessageQueued

RELEASE_EVERY = timedelta(minutes=15)  # the release function's schedule (infra/template.yaml)


def per_run(messages: int, seconds: int) -> int:
    """How many of an activity's messages one release run may let go."""
    return max(1, messages * int(RELEASE_EVERY.total_seconds()) // seconds)


def spread(payloads: list[str], now: datetime
           ) -> tuple[list[str], list[tuple[str, datetime, str]]]:
    """The payloads to release now, and (job key, release time, reason) for those to park."""
    go: list[str] = []
    limited: dict[str, list[tuple[MessageQueued, str]]] = defaultdict(list)
    for payload in payloads:
        job = MessageQueued.model_validate_json(payload)
        if job.rate_limit is None:
            go.append(payload)
        else:
            limited[job.activity_id].append((job, payload))
    later: list[tuple[str, datetime, str]] = []
    for jobs in limited.values():
        jobs.sort(key=lambda j: (j[0].at, j[0].key))
        limit = jobs[0][0].rate_limit
        assert limit is not None
        budget = per_run(limit.messages, limit.seconds)
        for i, (job, payload) in enumerate(jobs):
            run = i // budget
            if run == 0:
                go.append(payload)
                continue
            at = now + run * RELEASE_EVERY
            later.append((job.key, at, f"held: rate limit {limit.label}, release at "
                                       f"{at.isoformat()}"))
    return go, later
