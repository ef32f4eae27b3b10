"""One decision's writes, however many: split so that the state still moves only with them.

DynamoDB's TransactWriteItems takes at most 100 actions
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
An event entering many activities at once needs more (34 activities issuing a coupon and an
e-mail on one order: 103). The writes are cut by what each kind of row allows:

- The LAST transaction holds the state write (conditional on the version read) with every row
  whose insert the table's stream relays, so that nothing is announced for a state that never
  commits: job rows (the dispatcher sends them), coupon and segment-member rows (it publishes them,
  as SegmentEntered and SegmentLeft).
- Timer rows that do not fit go BEFORE it, in transactions of their own. A timer row is an
  idempotent Put keyed by the wait (subject, activity, entry, element): a retry writes the same
  row again; a timer whose state never committed wakes nobody (the wake-up finds no waiting
  customer), and the daily check catches a waiting customer whose timer was lost.
- Counter and statistics updates (`ADD`: not idempotent) that do not fit go AFTER it. Before
  the state they would count twice on a retry or a write conflict; after it, a crash between
  the two transactions leaves them short by that one event (statistics, never a message).

Relayed rows beyond one transaction (99 with the state) cannot be split safely: `TooManyWrites`
names the counts, and the event goes to the dead-letter queue with that reason.
"""

from __future__ import annotations

from typing import Any

MAX_TRANSACTION_ITEMS = 100


class TooManyWrites(ValueError):
    """More relayed rows than one transaction takes: the event cannot be applied atomically."""


# The kinds of row (the prefix of `DynamoCustomerStore._effect_writes`' names) by where they
# may go when a decision does not fit one transaction.
BEFORE = ("timer/",)
AFTER = ("rfm", "stats/", "cnt/")  # kept in the last transaction first in this order


def split(state_put: dict[str, Any], writes: dict[str, dict[str, Any]],
          limit: int = MAX_TRANSACTION_ITEMS) -> tuple[list[list[dict[str, Any]]],
                                                       list[dict[str, Any]],
                                                       list[list[dict[str, Any]]]]:
    """(transactions before, the last one with the state, transactions after)."""
    must = [w for name, w in writes.items() if not name.startswith(BEFORE + AFTER)]
    early = [w for name, w in writes.items() if name.startswith(BEFORE)]
    late = [w for prefix in AFTER for name, w in writes.items() if name.startswith(prefix)]
    final = [{"Put": state_put}, *must]
    if len(final) > limit:
        raise TooManyWrites(f"{len(must)} message, coupon and segment rows for one decision: "
                            f"at most {limit - 1} fit the transaction that commits the state")
    room = limit - len(final)
    final += late[:room]
    late = late[room:]
    room = limit - len(final)
    final += early[:room]
    early = early[room:]
    return _chunks(early, limit), final, _chunks(late, limit)


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
