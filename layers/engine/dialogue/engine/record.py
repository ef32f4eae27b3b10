"""Fold a shop event into the customer's state: profile, consent, orders, cart, behaviour.

Newer facts win, whatever the arrival order: each profile field, custom attribute, consent and
the cart carries the time (Unix second) of the fact that set it (`state.set_at`), and an older
fact never overwrites a newer one. On the same second, a later arrival wins, except that a
consent withdrawal beats a consent and an emptied cart beats a filled one (the safer fact).
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from pydantic_core import to_json

from dialogue.model.customer import (
    MAX_BEHAVIOUR,
    MAX_BEHAVIOUR_JSON,
    MAX_ORDERS,
    MAX_ORDERS_JSON,
    CartState,
    CustomerState,
    LineRecord,
    Occurrence,
    OrderRecord,
)
from dialogue.model.events import (
    MAX_ATTRIBUTES,
    CartUpdated,
    CategoryViewed,
    CustomerRegistered,
    CustomerUpdated,
    CustomEvent,
    Detail,
    OrderPlaced,
    PageVisited,
    ProductViewed,
    SearchPerformed,
    SocialParticipation,
)


def record(state: CustomerState, detail: Detail) -> Occurrence | None:
    """Mutate `state` with what `detail` tells; return the behaviour occurrence, if any.

    Behaviour (searches, views, pages, social, custom events) counts only with tracking consent:
    without it, it is neither kept nor reacted to, so it cannot profile the customer.
    """
    match detail:
        case CustomerRegistered():
            known = state.registered_at
            state.registered_at = min(known, detail.occurred_at) if known else detail.occurred_at
            _merge_profile(state, detail)
        case CustomerUpdated():
            _merge_profile(state, detail)
        case OrderPlaced():
            _record_order(state, detail)
        case CartUpdated():
            _update_cart(state, detail)
    if detail.BEHAVIOUR and not state.consent.tracking:
        return None
    occurrence = _occurrence(detail)
    if occurrence is not None and detail.BEHAVIOUR:
        keep_in_time(state.behaviour, occurrence, MAX_BEHAVIOUR)
    return occurrence


def keep_in_time(history: list[Any], item: Any, bound: int,
                 max_json: int = MAX_BEHAVIOUR_JSON) -> None:
    """Insert `item` in a history kept oldest first (an event may arrive late: rules' windows
    then need no sort), dropping the oldest beyond `bound` records or `max_json` bytes."""
    if not history or history[-1].at <= item.at:
        history.append(item)  # the usual case, without a search
    else:
        insort(history, item, key=_AT)
    del history[:-bound]
    excess = len(to_json(history)) - max_json
    while excess > 0 and len(history) > 1:
        excess -= len(to_json(history.pop(0))) + 1  # and its comma


_AT = attrgetter("at")


def second(at: datetime) -> int:
    """A fact's time as `set_at` keeps it: facts are compared to the second."""
    return int(at.timestamp())


def _merge_profile(state: CustomerState, detail: CustomerRegistered | CustomerUpdated) -> None:
    at = second(detail.occurred_at)
    set_at = dict(state.set_at)  # a new dict: the caller's state is left as it was
    given = detail.profile.model_dump(exclude_unset=True)
    attributes = {f"attributes.{k}": v for k, v in given.pop("attributes", {}).items()}
    fresh = {k: v for k, v in {**given, **attributes}.items() if set_at.get(k, -1) <= at}
    set_at.update(dict.fromkeys(fresh, at))
    kept = {**state.profile.attributes,
            **{k.removeprefix("attributes."): v for k, v in fresh.items() if k in attributes}}
    for name in sorted(kept, key=lambda n: set_at.get(f"attributes.{n}", 0))[:-MAX_ATTRIBUTES]:
        del kept[name]  # the least recently set leave first
        set_at.pop(f"attributes.{name}", None)
    update = {k: v for k, v in fresh.items() if k not in attributes}
    state.profile = state.profile.model_copy(update={**update, "attributes": kept})
    consent = {}
    for channel, value in detail.consent.model_dump(exclude_none=True).items():
        key, known = f"consent.{channel}", set_at.get(f"consent.{channel}", -1)
        if at > known or (at == known and not value):  # on the same second, "no" wins
            consent[channel] = value
            set_at[key] = at
    if consent:
        state.consent = state.consent.model_copy(update=consent)
    state.set_at = set_at


def _update_cart(state: CustomerState, cart: CartUpdated) -> None:
    """The whole cart as sent, unless a newer cart or order was applied: an order empties the
    cart, and a cart sent before it must not bring it back as abandoned."""
    at, known = second(cart.occurred_at), state.set_at.get("cart", -1)
    if at < known or (at == known and state.cart is None and cart.lines):
        return  # on the same second, the emptied cart wins
    lines = [
        LineRecord.model_construct(product_id=ln.product_id, categories=ln.categories,
                                   quantity=ln.quantity, value=ln.unit_price * ln.quantity)
        for ln in cart.lines
    ]
    state.cart = CartState.model_construct(
        cart_id=cart.cart_id, updated_at=cart.occurred_at, lines=lines,
    ) if lines else None
    state.set_at = {**state.set_at, "cart": at}


def _record_order(state: CustomerState, order: OrderPlaced) -> None:
    lines = [
        LineRecord.model_construct(product_id=ln.product_id, categories=ln.categories,
                   manufacturer=ln.manufacturer, quantity=ln.quantity,
                   value=ln.unit_price * ln.quantity - ln.discount, discounted=ln.discount > 0)
        for ln in order.lines
    ]
    keep_in_time(state.orders, OrderRecord.model_construct(
        order_id=order.order_id, at=order.occurred_at.replace(microsecond=0),
        total=order.total, lines=lines, promotion_codes=order.promotion_codes,
    ), MAX_ORDERS, MAX_ORDERS_JSON)
    state.order_count += 1
    state.total_spent += order.total
    at = second(order.occurred_at)
    if state.set_at.get("cart", -1) <= at:  # it empties the cart it followed, not a newer one
        state.cart = None
        state.set_at = {**state.set_at, "cart": at}


def _occurrence(detail: Detail) -> Occurrence | None:
    fields: dict[str, str]
    tags: list[str] = []
    match detail:
        case SearchPerformed():
            fields = {"query": detail.query}
        case ProductViewed():
            fields = {"product_id": detail.product_id}
            if detail.manufacturer:
                fields["manufacturer"] = detail.manufacturer
            tags = detail.categories
        case CategoryViewed():
            fields = {"category": detail.category}
            tags = [detail.category, *detail.parent_categories]
        case PageVisited():
            fields = {**detail.url_parameters, "url": detail.url}
            if detail.referrer:
                fields["referrer"] = detail.referrer
        case SocialParticipation():
            fields = {"kind": detail.kind}
            if detail.product_id:
                fields["product_id"] = detail.product_id
        case CustomEvent():
            return Occurrence.model_construct(at=_to_second(detail), kind=detail.name,
                                              fields=detail.parameters, tags=[])
        case OrderPlaced():
            fields = {"order_id": detail.order_id, "total": str(detail.total)}
        case CartUpdated():
            fields = {"cart_id": detail.cart_id}
        case _:
            fields = {}  # logins, logouts, profile changes: awaited, never kept in history
    return Occurrence.model_construct(at=_to_second(detail), kind=detail.DETAIL_TYPE,
                                      fields=fields, tags=tags)


def _to_second(detail: Detail) -> datetime:
    """As the history stores it: in memory as on disk, one second's records stay in arrival
    order (what `triggers.seen_at` relies on)."""
    return detail.occurred_at.replace(microsecond=0)


def line_matches(line: LineRecord, categories: list[str], products: list[str]) -> bool:
    """No filter matches every line; otherwise any listed category or product does."""
    if not categories and not products:
        return True
    wanted = {c.casefold() for c in categories}
    return line.product_id in products or any(c.casefold() in wanted for c in line.categories)


def value_of(lines: list[LineRecord]) -> Decimal:
    return sum((ln.value for ln in lines), Decimal(0))
