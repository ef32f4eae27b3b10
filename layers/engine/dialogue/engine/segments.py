"""Rule-based segments: join or leave each as its rule says, for one customer at `now`.

`refresh` is called by the daily check (before the daily triggers, so that *customer is in
segment* sees today's membership) and by "refresh now". Rules are compiled once per catalog into
plain closures (`program`), so a customer costs one pass over the rules, not a walk of pydantic
objects; managed segments are never touched.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dialogue.model.customer import (
    MAX_BEHAVIOUR,
    MAX_SEGMENT_HISTORY,
    CustomerState,
    Membership,
    Occurrence,
    SegmentChange,
)
from dialogue.model.effects import AnyEffect, SegmentAdded, SegmentRemoved
from dialogue.model.segment import Segment

from .catalog import Catalog
from .fields import Facts
from .record import keep_in_time
from .rfm import RfmBoundaries
from .rules import Pred, compile_rule, uses_rfm

__all__ = ["RfmBoundaries", "evaluate", "note_abandoned_cart", "program", "refresh", "rule_order"]

RULE = "rule"  # Membership.by / SegmentChange.by of rule-based memberships
EXPIRED = "rule:expired"  # a time-limited membership ran out while the rule still held
ABANDONED_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class CompiledSegment:
    segment: Segment
    holds: Pred
    uses_rfm: bool


_programs: weakref.WeakKeyDictionary[Catalog, list[CompiledSegment]] = (
    weakref.WeakKeyDictionary())


def program(catalog: Catalog) -> list[CompiledSegment]:
    """The catalog's rule-based segments, compiled, in dependency order (cached per catalog)."""
    found = _programs.get(catalog)
    if found is None:
        found = [CompiledSegment(s, compile_rule(s), uses_rfm(s))
                 for s in rule_order(catalog.segments)]
        _programs[catalog] = found
    return found


def rule_order(segments: dict[str, Segment]) -> list[Segment]:
    """Rule-based segments, each after the rule-based segments its rule tests membership of.
    Segments in a cycle (rejected by validation) are left out."""
    done: dict[str, bool] = {}  # id → ordered (True) / being visited (False)
    out: list[Segment] = []

    def visit(seg: Segment) -> bool:
        if seg.id in done:
            return done[seg.id]
        done[seg.id] = False
        deps = [segments[d] for _, d in seg.references()
                if d in segments and segments[d].kind == "rule"]
        ok = all([visit(d) for d in deps])
        if ok:
            out.append(seg)
        done[seg.id] = ok
        return ok

    for seg in segments.values():
        if seg.kind == "rule":
            visit(seg)
    return out


def refresh(state: CustomerState, catalog: Catalog, now: datetime,
            rfm: RfmBoundaries | None = None, *, only: set[str] | None = None,
            carts: bool = True) -> list[AnyEffect]:
    """Join or leave every rule-based segment of `catalog` (or those in `only`) as the rules now
    say; mutates `state` (memberships, history, an abandoned cart) and returns the changes.

    Without `rfm` the segments whose rules use RFM scores are left as they are: scoring everyone
    "no score" would empty them. May append a CartAbandoned occurrence even when no segment
    changes (see `note_abandoned_cart`): compare the behaviour to know it must be saved. Not
    with `carts=False` (a login's merge: the daily check notes it, and fires its triggers).
    """
    if carts:
        note_abandoned_cart(state, now)
    facts = Facts(state, now, rfm)
    effects: list[AnyEffect] = []
    for compiled in program(catalog):
        seg = compiled.segment
        if (only is not None and seg.id not in only) or (compiled.uses_rfm and rfm is None):
            continue
        effects += _apply(state, seg, compiled.holds(facts), now)
    return effects


def evaluate(segment: Segment, state: CustomerState, now: datetime,
             rfm: RfmBoundaries | None = None) -> bool:
    """Does `segment`'s rule hold for this customer now? (Compiles the rule on every call: for
    tools and tests; `refresh` uses the catalog's compiled program.) Managed segments: False."""
    if segment.kind != "rule":
        return False
    return compile_rule(segment)(Facts(state, now, rfm))


def note_abandoned_cart(state: CustomerState, now: datetime) -> Occurrence | None:
    """Record the current cart as abandoned (a `CartAbandoned` occurrence, once per cart and
    last update) when it has a line and has not changed for a day. Needs tracking consent, as
    all behaviour does. Its time is the cart's last update: when the customer left it."""
    cart = state.cart
    if (cart is None or not cart.lines or not state.consent.tracking
            or now - cart.updated_at < ABANDONED_AFTER):
        return None
    at = cart.updated_at.replace(microsecond=0)  # as the history stores it
    if any(o.kind == "CartAbandoned" and o.at == at and o.fields.get("cart_id") == cart.cart_id
           for o in reversed(state.behaviour)):
        return None
    occurrence = Occurrence.model_construct(
        at=at, kind="CartAbandoned", tags=[],
        fields={"cart_id": cart.cart_id, "value": str(cart.value),
                "items": str(sum(ln.quantity for ln in cart.lines))})
    keep_in_time(state.behaviour, occurrence, MAX_BEHAVIOUR)
    if not any(o is occurrence for o in state.behaviour):
        return None  # older than the whole bounded history: not kept, so not news either
    return occurrence


def _apply(state: CustomerState, seg: Segment, holds: bool, now: datetime) -> list[AnyEffect]:
    """Membership as the rule says. A time-limited member whose time ran out while the rule
    still holds is recorded as left and kept as EXPIRED, so they do not join again until they
    have left the rule (the EXPIRED mark is then dropped quietly) and qualify anew."""
    current = state.segments.get(seg.id)
    if current is None:
        if not holds:
            return []
        until = now + timedelta(days=seg.membership_days) if seg.membership_days else None
        state.segments[seg.id] = Membership.model_construct(since=now, until=until, by=RULE)
        return [_change(state, seg.id, "added", now, until)]
    if current.by == EXPIRED or (holds and current.active(now)):
        if not holds:
            del state.segments[seg.id]
        return []
    if holds:
        state.segments[seg.id] = Membership.model_construct(
            since=current.since, until=current.until, by=EXPIRED)
    else:
        del state.segments[seg.id]
    return [_change(state, seg.id, "removed", now, None)]


def _change(state: CustomerState, segment: str, change: Literal["added", "removed"],
            now: datetime, until: datetime | None) -> AnyEffect:
    history = state.segment_history
    history.append(SegmentChange.model_construct(segment=segment, change=change, at=now, by=RULE,
                                                 element=None))
    del history[:-MAX_SEGMENT_HISTORY]
    base = {"activity_id": "", "element_id": segment, "subject": state.subject, "entry": 0,
            "at": now, "segment": segment}
    if change == "added":
        return SegmentAdded.model_construct(**base, until=until)  # type: ignore[arg-type]
    return SegmentRemoved.model_construct(**base)  # type: ignore[arg-type]

