"""Deletion on request: a customer's state becomes a tombstone (pure, like `decide`).

The tombstone keeps only what refusing late events needs: the subject (the state's key), its
lifetime, the exactly-once window (digests of event ids, nothing personal) and `deleted_at`.
An event dated at or before the deletion, for that id, is refused (a retry, a late delivery, a
timer: none brings the customer back); one dated after it starts a fresh, empty customer in a
new lifetime (the shop registered that id again). Memberships go with the state in the same
transaction; the rows keyed by the customer (jobs, coupons, timers, linked browsers) are erased
next (`dialogue.identity.erase_customer`, docs/identity.md, "Deletion").
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from dialogue.model.customer import CustomerState
from dialogue.model.effects import AnyEffect, SegmentRemoved

from .controls import DELETED, counted
from .decide import Decision

BY = "deletion"  # the activity and element named by a deletion's segment removals


def forget(state: CustomerState, event_id: str, at: datetime, now: datetime) -> Decision:
    """The tombstone of `state`, and the removal of every segment membership it holds."""
    if (state.deleted_at is not None and state.deleted_at >= at) \
            or state.has_processed(event_id):  # (also after a fresh customer was reborn)
        return Decision(state=state, duplicate=True)
    effects: list[AnyEffect] = [
        SegmentRemoved(activity_id=BY, element_id=BY, subject=state.subject, entry=0, at=now,
                       incarnation=state.incarnation, segment=segment)
        for segment in sorted(state.segments)]
    effects += [counted(activity_id, state, entry, now, DELETED)  # each run ends, counted
                for activity_id, journey in sorted(state.journeys.items())
                for entry in sorted({i.entry for i in journey.waiting})]
    # The browsers stay until their guest states are erased (`erased`): a retry after a crash
    # between the two steps still knows them.
    tombstone = CustomerState(subject=state.subject, version=state.version,
                              incarnation=state.incarnation, deleted_at=at,
                              browsers=list(state.browsers))
    tombstone.processed = dict(state.processed)
    tombstone.remember(event_id, now)
    return Decision(state=tombstone, effects=effects)


def erased(state: CustomerState) -> Decision:
    """The tombstone once its browsers' guest states and rows are gone: it names nobody."""
    if state.deleted_at is None or not state.browsers:
        return Decision(state=state, duplicate=True)
    return Decision(state=state.model_copy(update={"browsers": []}))


def refused(state: CustomerState, occurred_at: datetime) -> bool:
    """An event for a deleted customer dated at or before the deletion: never applied."""
    return state.deleted_at is not None and occurred_at <= state.deleted_at


def reborn(state: CustomerState, event_id: str) -> CustomerState:
    """A fresh customer after a tombstone, in a lifetime of its own (derived, so a retry of the
    same event draws the same one): its effect keys never meet the deleted customer's rows."""
    if state.deleted_at is None:
        return state
    lifetime = hashlib.blake2b(f"{state.incarnation}/{event_id}".encode(),
                               digest_size=8).hexdigest()
    return CustomerState(subject=state.subject, version=state.version, incarnation=lifetime,
                         processed=dict(state.processed))
