"""The single-table key design, in one place.

Customers table (its own table, so the daily check's scan reads customer states and nothing else):
  CUSTOMER#<id> | GUEST#<personalization id>   STATE          the customer's state document

Main table:
  SEGMENT#<segment>#<shard>                    <subject>      one member (sharded: no hot key)
  ACTIVITY#<activity>#<n>                      DAY#<day>      per-element counts that shop day
                                               COUNTERS       the totals kept before day rows
  JOB#<effect key>                             JOB            a message job: the outbox row
  COUPON#<effect key>                          COUPON         an issued coupon
  SUPPRESSED#<sha256 of the address>           ADDRESS        never write to it again
  TIMER#<bucket end>#<shard>                   <timer key>    a customer due at a wait's end
  DAILY#<shop-local day>                       RUN            the daily check's run, once a day
  SEGSTATS#<segment>#<n>                       DAY#<day>      entries and exits that day (sharded)
  RFM#<n>                                      HIST           customers per R/F/M bin (sharded)
  RFM#SNAPSHOT                                 <day>          the merged histogram of a daily run
"""

from __future__ import annotations

import hashlib

# Every customer reaching an element (or joining a segment) adds to a counter: a campaign that
# reaches 5 M customers in 15 minutes is ~11,000 write units a second, so the shard is part of
# the partition key (a key takes 1,000 a second) and there are enough of them.
COUNTER_SHARDS = 32


def shard(subject: str, shards: int) -> int:
    return int(hashlib.blake2b(subject.encode(), digest_size=4).hexdigest(), 16) % shards


def state_key(subject: str) -> dict[str, dict[str, str]]:
    kind, _, ident = subject.partition(":")
    return {"pk": {"S": f"{kind.upper()}#{ident}"}, "sk": {"S": "STATE"}}


def segment_member_key(segment: str, subject: str, shards: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"SEGMENT#{segment}#{shard(subject, shards)}"}, "sk": {"S": subject}}


def counters_key(activity_id: str, subject: str, day: str) -> dict[str, dict[str, str]]:
    """One row per shard and shop-local day: the statistics give each day and, summed (with a
    `COUNTERS` row written before per-day rows existed), the totals."""
    return {"pk": {"S": f"ACTIVITY#{activity_id}#{shard(subject, COUNTER_SHARDS)}"},
            "sk": {"S": f"DAY#{day}"}}


def job_key(effect_key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"JOB#{effect_key}"}, "sk": {"S": "JOB"}}


def coupon_key(effect_key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"COUPON#{effect_key}"}, "sk": {"S": "COUPON"}}


def suppression_key(address_hash: str) -> dict[str, dict[str, str]]:
    """An address that must not be written to again (bounce, complaint, unsubscribe)."""
    return {"pk": {"S": f"SUPPRESSED#{address_hash}"}, "sk": {"S": "ADDRESS"}}


def timer_key(bucket: str, shard_no: int, timer: str) -> dict[str, dict[str, str]]:
    """Timers are grouped by the end of their time bucket, so one Step Functions execution per
    bucket can find them all; sharded so waking a million customers is parallel."""
    return {"pk": {"S": f"TIMER#{bucket}#{shard_no}"}, "sk": {"S": timer}}


def daily_run_key(day: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"DAILY#{day}"}, "sk": {"S": "RUN"}}


def segment_stats_key(segment: str, day: str, subject: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"SEGSTATS#{segment}#{shard(subject, COUNTER_SHARDS)}"},
            "sk": {"S": f"DAY#{day}"}}


RFM_SHARDS = 16


def rfm_key(subject: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"RFM#{shard(subject, RFM_SHARDS)}"}, "sk": {"S": "HIST"}}


def rfm_snapshot_key(day: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": "RFM#SNAPSHOT"}, "sk": {"S": day}}
