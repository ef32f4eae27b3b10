"""Fold a shop event into the customer's state: profile, consent, orders, cart, behaviour."""

from __future__ import annotations

from bisect import insort
from decimal import Decimal
from operator import attrgetter
from typing import Any

from dialogue.model.customer import (
    MAX_BEHAVIOUR,
    MAX_ORDERS,
    CartState,
    CustomerState,
    LineRecord,
    Occurrence,
    OrderRecord,
)
from dialogue.model.events import (
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
            state.registered_at = state.registered_at or detail.occurred_at
            _merge_profile(state, detail)
        case CustomerUpdated():
            _merge_profile(state, detail)
        case OrderPlaced():
            _record_order(state, detail)
        case CartUpdated():
            lines = [
                LineRecord.model_construct(product_id=ln.product_id, categories=ln.categories,
                           quantity=ln.quantity, value=ln.unit_price * ln.quantity)
                for ln in detail.lines
            ]
            state.cart = CartState.model_construct(
                cart_id=detail.cart_id, updated_at=detail.occurred_at, lines=lines,
            ) if lines else None
    if detail.BEHAVIOUR and not state.consent.tracking:
        return None
    occurrence = _occurrence(detail)
    if occurrence is not None and detail.BEHAVIOUR:
        keep_in_time(state.behaviour, occurrence, MAX_BEHAVIOUR)
    return occurrence


def keep_in_time(history: list[Any], item: Any, bound: int) -> None:
    """Insert `item` in a history kept oldest first (an event may arrive late: rules' windows
    then need no sort), dropping the oldest beyond `bound`."""
    if not history or history[-1].at <= item.at:
        history.append(item)  # the usual case, without a search
    else:
        insort(history, item, key=_AT)
    del history[:-bound]


_AT = attrgetter("at")


def _merge_profile(state: CustomerState, detail: CustomerRegistered | CustomerUpdated) -> None:
    given = detail.profile.model_dump(exclude_unset=True)
    attributes = {**state.profile.attributes, **given.pop("attributes", {})}
    state.profile = state.profile.model_copy(update={**given, "attributes": attributes})
    given_consent = detail.consent.model_dump(exclude_none=True)
    if given_consent:
        state.consent = state.consent.model_copy(update=given_consent)


def _record_order(state: CustomerState, order: OrderPlaced) -> None:
    lines = [
        LineRecord.model_construct(product_id=ln.product_id, categories=ln.categories,
                   manufacturer=ln.manufacturer, quantity=ln.quantity,
                   value=ln.unit_price * ln.quantity - ln.discount, discounted=ln.discount > 0)
        for ln in order.lines
    ]
    keep_in_time(state.orders, OrderRecord.model_construct(
        order_id=order.order_id, at=order.occurred_at,
        total=order.total, lines=lines, promotion_codes=order.promotion_codes,
    ), MAX_ORDERS)
    state.order_count += 1
    state.total_spent += order.total
    state.cart = None  # an order empties the cart: it is no longer abandoned


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
            return Occurrence.model_construct(at=detail.occurred_at, kind=detail.name,
                                              fields=detail.parameters, tags=[])
        case OrderPlaced():
            fields = {"order_id": detail.order_id, "total": str(detail.total)}
        case CartUpdated():
            fields = {"cart_id": detail.cart_id}
        case _:
            fields = {}  # logins, logouts, profile changes: awaited, never kept in history
    return Occurrence.model_construct(at=detail.occurred_at, kind=detail.DETAIL_TYPE,
                                      fields=fields, tags=tags)


def line_matches(line: LineRecord, categories: list[str], products: list[str]) -> bool:
    """No filter matches every line; otherwise any listed category or product does."""
    if not categories and not products:
        return True
    wanted = {c.casefold() for c in categories}
    return line.product_id in products or any(c.casefold() in wanted for c in line.categories)


def value_of(lines: list[LineRecord]) -> Decimal:
    return sum((ln.value for ln in lines), Decimal(0))
