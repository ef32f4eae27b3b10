"""Guest → customer: the link at login, the merge of what the guest did, the unlink at logout.

Pure, like `decide`. A login or registration carrying both ids runs in the customer's FIFO group
(docs/events.md, "Ordering and duplicates"); it reads the customer's state and the guest's and
commits both at once: the customer with the guest's behaviour, orders, cart and waiting runs
merged in, the guest emptied and `linked_to` the customer. The guest's own group is not ordered
with the customer's: a guest event that arrives after the link finds it (`redirect_to`) and is
applied to the customer instead. A logout ends the link (unless the shop keeps links, "remember
me"): what the browser does next belongs to a new guest, never to the customer who left.
Segments earned by a customer stay with that customer; nothing of a customer ever goes to a guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic_core import to_json

from dialogue.model.customer import (
    MAX_BEHAVIOUR,
    MAX_EVENTS_IN_WINDOW,
    MAX_ORDERS,
    MAX_ORDERS_JSON,
    MAX_SEGMENT_HISTORY,
    CustomerState,
    Membership,
    SegmentChange,
)
from dialogue.model.effects import (
    AnyEffect,
    CouponIssued,
    MessageQueued,
    SegmentAdded,
    SegmentRemoved,
    WaitStarted,
)
from dialogue.model.events import CustomerRegistered, Detail, ShopEvent

from .catalog import Catalog
from .controls import GUEST_DROPPED, GUEST_HELD, counted
from .decide import Decision, decide, own_journey, writable
from .flow import Chance, Codes, new_coupon_code, stable_chance
from .record import keep_in_time
from .segments import EXPIRED as RULE_EXPIRED
from .segments import RULE, refresh

# A guest's would-be messages and coupons wait this long for a link, at most this many (and
# bytes: a message carries its event's detail); then the oldest are dropped, counted.
HOLD_FOR = timedelta(days=7)
MAX_HELD = 10
MAX_HELD_JSON = 24_000
MAX_BROWSERS = 20  # the browsers a customer's state remembers, for deletion and export
LINKING = frozenset({"CustomerRegistered", "CustomerLoggedIn"})
UNLINKING = "CustomerLoggedOut"
LINK = "link"  # the element (and, for a guest's exit, the activity) a link's segment moves name


class Linked(Exception):  # noqa: N818 - a redirection, not a failure
    """A guest event for a browser linked to a customer: apply it to that customer."""

    def __init__(self, customer_id: str):
        super().__init__("the guest is linked to a customer")
        self.customer_id = customer_id


def guest_of(detail: Detail) -> str | None:
    """The guest subject a login, registration or logout names besides the customer."""
    if detail.customer_id and detail.personalization_id and (
            detail.DETAIL_TYPE in LINKING or detail.DETAIL_TYPE == UNLINKING):
        return f"guest:{detail.personalization_id}"
    return None


def redirect_to(guest: CustomerState, detail: Detail) -> str | None:
    """The customer a guest-only event belongs to: the linked one, unless the event happened
    after that customer logged out (then it is the next shopper's, kept under the guest)."""
    if guest.linked_to is None:
        return None
    if guest.linked_until is not None and detail.occurred_at >= guest.linked_until:
        return None
    return guest.linked_to


@dataclass
class IdentityDecision:
    """The customer's decision, and the guest's new state to commit with it (None: unchanged)."""

    decision: Decision
    guest: CustomerState | None


def decide_identity(customer: CustomerState, guest: CustomerState, event: ShopEvent,
                    catalog: Catalog, now: datetime, keep_link_after_logout: bool = False,
                    chance: Chance = stable_chance,
                    codes: Codes = new_coupon_code) -> IdentityDecision:
    """A login/registration links and merges; a logout unlinks. Exactly once: the event id is
    remembered by the customer, and both states are committed together or not at all."""
    detail = event.detail
    assert detail.customer_id is not None
    if customer.has_processed(detail.event_id):
        return IdentityDecision(Decision(state=customer, duplicate=True), None)
    if detail.DETAIL_TYPE == UNLINKING:
        decision = decide(customer, event, catalog, now, chance, codes)
        if keep_link_after_logout or guest.linked_to != detail.customer_id \
                or guest.linked_until is not None:
            return IdentityDecision(decision, None)
        return IdentityDecision(decision, guest.model_copy(
            update={"linked_until": detail.occurred_at}))
    merged = writable(customer)
    pid = guest.subject.removeprefix("guest:")
    merged.browsers = [*(b for b in customer.browsers if b != pid), pid][-MAX_BROWSERS:]
    effects = merge(merged, guest, catalog, _tracking(customer, detail), now)
    left = [*guest.segments]
    decision = decide(merged, event, catalog, now, chance, codes)
    decision.effects[:0] = effects
    empty = emptied(guest, detail.customer_id)
    decision.effects += _left(empty, left, now)
    return IdentityDecision(decision, empty)


def _tracking(customer: CustomerState, detail: Detail) -> bool:
    """Tracking consent as it stands once the event is applied (a registration may refuse)."""
    if isinstance(detail, CustomerRegistered) and detail.consent.tracking is not None:
        return detail.consent.tracking
    return customer.consent.tracking


HELD = "GuestMessagesHeld"  # the metrics of a guest's messages and coupons, by reason
DROPPED = "GuestMessagesDropped_guest"  # the activity drops a guest's (`guest_messages`)
EXPIRED = "GuestMessagesDropped_expired"  # held too long, or beyond the bounds


def hold(decision: Decision, catalog: Catalog | None = None) -> dict[str, int]:
    """Messages and coupons never go to an anonymous browser: a guest's are taken out of its
    decision and kept in its state until a login links it (`release`), for HOLD_FOR after the
    newest, or dropped at once if their activity says `"guest_messages": "drop"`. Returns how
    many were held, dropped by the activity and dropped held ones (too old, or beyond the
    bounds), by metric name, for the caller to count."""
    state = decision.state
    if not state.subject.startswith("guest:"):
        return {}
    personal = [e for e in decision.effects if isinstance(e, MessageQueued | CouponIssued)]
    if not personal:
        return {}
    decision.effects = [e for e in decision.effects
                        if not isinstance(e, MessageQueued | CouponIssued)]
    keep = [e for e in personal if _held_for(e.activity_id, catalog)]
    counts = {HELD: len(keep), DROPPED: len(personal) - len(keep)}
    decision.effects += [  # the activity's statistics, with the reason
        counted(e.activity_id, state, e.entry, e.at, GUEST_HELD if e in keep else GUEST_DROPPED)
        for e in personal if isinstance(e, MessageQueued)]
    if keep:
        held = [*state.held, *keep]
        newest = max(e.at for e in held)
        kept = [e for e in held if e.at >= newest - HOLD_FOR][-MAX_HELD:]
        while len(kept) > 1 and len(to_json(kept)) > MAX_HELD_JSON:
            kept.pop(0)
        state.held = kept
        counts[EXPIRED] = len(held) - len(kept)
    return {name: n for name, n in counts.items() if n}


def _held_for(activity_id: str, catalog: Catalog | None) -> bool:
    activity = catalog.get(activity_id) if catalog is not None else None
    return activity is None or activity.guest_messages == "hold"


def release(state: CustomerState, guest: CustomerState, offsets: dict[str, int],
            now: datetime) -> list[AnyEffect]:
    """The guest's held messages and coupons, now the customer's (their consent and address
    decide delivery), for the runs the merge kept (`offsets`: activity → entry offset)."""
    out: list[AnyEffect] = []
    for effect in guest.held:
        if effect.activity_id in offsets and effect.at >= now - HOLD_FOR:
            out.append(effect.model_copy(update={
                "subject": state.subject, "incarnation": state.incarnation,
                "entry": effect.entry + offsets[effect.activity_id]}))
    return out


def emptied(guest: CustomerState, customer_id: str) -> CustomerState:
    """The guest once merged: only its identity, exactly-once window, segment history and the
    link (its memberships went to the customer: `_move_segments`, `_left`)."""
    return CustomerState(subject=guest.subject, version=guest.version,
                         incarnation=guest.incarnation, processed=guest.processed,
                         segment_history=list(guest.segment_history),
                         last_daily=guest.last_daily, linked_to=customer_id)


def _left(guest: CustomerState, segments: list[str], now: datetime) -> list[AnyEffect]:
    """The guest leaves every segment it was in (its member rows go, SegmentLeft for the
    guest id): what it earned is the customer's now, never the next shopper's on the browser."""
    for segment in segments:
        guest.segment_history.append(SegmentChange.model_construct(
            segment=segment, change="removed", at=now, by=LINK, element=None))
    del guest.segment_history[:-MAX_SEGMENT_HISTORY]
    return [SegmentRemoved(activity_id=LINK, element_id=LINK, subject=guest.subject, entry=0,
                           at=now, incarnation=guest.incarnation, segment=segment)
            for segment in segments]


def _move_segments(state: CustomerState, guest: CustomerState, catalog: Catalog,
                   now: datetime) -> list[AnyEffect]:
    """Managed memberships the guest earned (an activity added it) become the customer's, with
    their activity and end (SegmentEntered for the customer); rule-based ones are worked out
    again from the merged facts (RFM-based ones at the next daily check, with the day's
    quintiles). A segment the customer is in already stays as the customer's."""
    effects: list[AnyEffect] = []
    for segment, membership in guest.segments.items():
        if membership.by in (RULE, RULE_EXPIRED) or not membership.active(now) \
                or state.in_segment(segment, now):
            continue
        state.segments[segment] = Membership.model_construct(
            since=now, until=membership.until, by=membership.by)
        state.segment_history.append(SegmentChange.model_construct(
            segment=segment, change="added", at=now, by=membership.by, element=LINK))
        effects.append(SegmentAdded(
            activity_id=membership.by or "", element_id=LINK, subject=state.subject, entry=0,
            at=now, incarnation=state.incarnation, segment=segment, until=membership.until))
    del state.segment_history[:-MAX_SEGMENT_HISTORY]
    return effects + refresh(state, catalog, now, carts=False)


def merge(state: CustomerState, guest: CustomerState, catalog: Catalog, tracking: bool,
          now: datetime) -> list[AnyEffect]:
    """Fold what the guest did into `state` (a `writable` copy). Behaviour only with the
    customer's tracking consent; orders always (what orders need); the newer cart wins; the
    guest's event ids join the exactly-once window, so a late or redelivered guest event that
    was applied before is not applied again."""
    if tracking:
        for occurrence in guest.behaviour:
            keep_in_time(state.behaviour, occurrence, MAX_BEHAVIOUR)
    known = {o.order_id for o in state.orders}
    for order in guest.orders:
        if order.order_id not in known:
            keep_in_time(state.orders, order, MAX_ORDERS, MAX_ORDERS_JSON)
            state.order_count += 1
            state.total_spent += order.total
    guest_cart_at = guest.set_at.get("cart", -1)
    if guest_cart_at > state.set_at.get("cart", -1):
        state.cart = guest.cart
        state.set_at = {**state.set_at, "cart": guest_cart_at}
    window = sorted({**guest.processed, **state.processed}.items(), key=lambda kv: kv[1])
    state.processed = dict(window[-(MAX_EVENTS_IN_WINDOW - 100):])
    offsets: dict[str, int] = {}
    effects = _merge_journeys(state, guest, catalog, now, offsets)
    if guest.behaviour or guest.orders or guest.cart or guest.segments:
        effects += _move_segments(state, guest, catalog, now)
    return effects + release(state, guest, offsets, now)


def _merge_journeys(state: CustomerState, guest: CustomerState, catalog: Catalog,
                    now: datetime, offsets: dict[str, int]) -> list[AnyEffect]:
    """The guest's runs become the customer's, numbered after the customer's own entries. A
    non-repeatable activity the customer already went through keeps only the customer's run;
    an activity no longer in the catalog is left. Waiting runs get timers of the customer (the
    guest's timers then find nobody waiting: no-ops)."""
    effects: list[AnyEffect] = []
    for activity_id, theirs in guest.journeys.items():
        activity = catalog.get(activity_id)
        ours = state.journeys.get(activity_id)
        if activity is None or not theirs.entries:
            continue
        if ours is not None and ours.entries and not activity.repeatable:
            continue  # non-repeatable and already gone through: the guest's run does not count
        journey = own_journey(state, activity_id)
        offset = offsets[activity_id] = journey.entries
        journey.entries += theirs.entries
        last = journey.last_entered_at
        if theirs.last_entered_at is not None and (last is None or theirs.last_entered_at > last):
            journey.last_entered_at = theirs.last_entered_at
            journey.seen_at_entry = theirs.seen_at_entry
        for instance in theirs.waiting:
            moved = instance.model_copy(update={"entry": instance.entry + offset})
            journey.waiting.append(moved)
            if moved.due_at is not None:
                effects.append(WaitStarted(
                    activity_id=activity_id, element_id=moved.element, subject=state.subject,
                    entry=moved.entry, at=now, incarnation=state.incarnation,
                    due_at=moved.due_at))
    return effects
