"""Render every template an activity sends, as it would be sent, before anything is sent.

For each *Send message* element, every way a customer can reach it is followed from the first
element: which event the run has (the trigger's, a later trigger's, or a wake-up's after a wait)
and which coupons were issued since. The template is rendered for a sample customer who has every
profile field and a cart, with that event (every field it can carry) and those coupons. What
fails for this customer fails for every customer: a field the event does not have (`event.cart`
after a birthday trigger), `coupon` where none was issued, `1/0`, a bound of the sandbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from dialogue.delivery.render import RenderError, render
from dialogue.engine import daily
from dialogue.model.activity import (
    Activity,
    Branch,
    Element,
    InSegmentTrigger,
    IssueCoupon,
    SendMessage,
    Trigger,
    Wait,
    WaitForEventTrigger,
    trigger_event,
)
from dialogue.model.customer import CartState, CustomerState, Journey, LineRecord
from dialogue.model.events import DETAILS, Profile
from dialogue.model.template import EmailTemplate, MessageTemplate

SAMPLE_DAY = date(2026, 12, 1)
SAMPLE_NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
MAX_CONTEXTS = 32  # distinct (event, coupons) pairs tried per Send message


class OpenMapping(dict[str, Any]):
    """The shop's own names (`customer.attributes.*`, `event.parameters.*`): any name exists."""

    def __missing__(self, key: str) -> str:
        return "sample"


_BASE = {"event_id": "sample-event", "customer_id": "sample-customer",
         "personalization_id": "sample-browser", "occurred_at": SAMPLE_NOW.isoformat()}
_LINE = {"product_id": "sku-1", "name": "Skis", "categories": ["Skis"],
         "manufacturer": "Rossignol", "quantity": 1, "unit_price": "79.9", "discount": "7.99"}
_DETAILS: dict[str, dict[str, Any]] = {
    "CustomerRegistered": {"profile": {"first_name": "Frank", "email": "frank@example.com"},
                           "consent": {"email": True, "sms": True, "tracking": True}},
    "CustomerLoggedIn": {}, "CustomerLoggedOut": {}, "CustomerDeleted": {},
    "CustomerUpdated": {"profile": {"first_name": "Frank"}, "consent": {"email": True}},
    "OrderPlaced": {"order_id": "ord-1", "lines": [_LINE], "promotion_codes": ["SALE"],
                    "total": "94.3", "currency": "EUR"},
    "CartUpdated": {"cart_id": "cart-1", "lines": [
        {k: _LINE[k] for k in ("product_id", "categories", "quantity", "unit_price")}]},
    "ProductViewed": {"product_id": "sku-1", "categories": ["Skis"], "manufacturer": "Rossignol"},
    "CategoryViewed": {"category": "Skis", "parent_categories": ["Winter"]},
    "SearchPerformed": {"query": "Rossignol"},
    "PageVisited": {"url": "https://shop.example/sale", "url_parameters": {},
                    "referrer": "https://search.example"},
    "SocialParticipation": {"kind": "review", "product_id": "sku-1"},
    "CustomEvent": {"name": "Sample", "parameters": {}},
}


def sample_customer() -> CustomerState:
    """Every profile field, a cart of one line, consent to both channels."""
    profile = Profile(email="frank@example.com", phone="+33612345678", first_name="Frank",
                      last_name="Martin", birthday=date(1984, 12, 1), country="FR", city="Lyon",
                      language="fr", attributes={"sample": "sample"})
    cart = CartState(cart_id="cart-1", updated_at=SAMPLE_NOW - timedelta(days=3),
                     lines=[LineRecord(product_id="sku-1", categories=["Skis"], quantity=1,
                                       value=79.9)])
    return CustomerState(subject="customer:sample", profile=profile, cart=cart)


def event_sample(detail_type: str, custom_name: str | None = None) -> dict[str, Any]:
    """What `event` holds after an event of this type: the detail as the engine passes it."""
    raw = {**_BASE, **_DETAILS[detail_type]}
    if custom_name is not None:
        raw["name"] = custom_name
    event = DETAILS[detail_type].model_validate(raw).model_dump(mode="json")
    for key in ("parameters", "url_parameters"):
        if key in event:
            event[key] = OpenMapping(event[key])
    return event


def _daily_sample(activity: Activity, trigger: Element) -> dict[str, Any]:
    """What `event` holds in a run the daily check starts: taken from the daily check itself."""
    segment = trigger.segments[0] if isinstance(trigger, InSegmentTrigger) else None
    run = daily._run(sample_customer(), activity, Journey(), 1, SAMPLE_DAY, SAMPLE_NOW,
                     lambda _: 0.0, lambda: "SAMPLECODE", trigger, segment)
    return dict(run.event)


def _entry_event(activity: Activity, el: Element) -> dict[str, Any]:
    detail_type = trigger_event(el)
    if detail_type is None:
        return _daily_sample(activity, el)
    name = el.event if isinstance(el, WaitForEventTrigger) and detail_type == "CustomEvent" \
        else None
    return event_sample(detail_type, name)


def _timer(element: str) -> dict[str, Any]:
    return {"type": "timer", "element": element, "due_at": SAMPLE_NOW.isoformat()}


@dataclass(frozen=True)
class Reach:
    """One way to a Send message: the run's event, where it came from, the coupons issued."""

    label: str
    event: str  # JSON of the event (hashable)
    coupons: tuple[str, ...]


def reaches(activity: Activity) -> dict[int, list[Reach]]:
    """Send message index → the distinct ways a customer can get there."""
    index = {el.id: i for i, el in enumerate(activity.elements)}
    first = activity.entry
    start = Reach(f"after the {first.type!r} trigger",
                  json.dumps(_entry_event(activity, first)), ())
    found: dict[int, list[Reach]] = {}
    seen: set[tuple[str, Reach]] = set()
    todo = [(first.id, start, True)]
    while todo:
        element_id, reach, entering = todo.pop()
        if element_id not in index or (element_id, reach) in seen:
            continue
        seen.add((element_id, reach))
        i = index[element_id]
        el = activity.elements[i]
        if isinstance(el, SendMessage):
            ways = found.setdefault(i, [])
            if len(ways) < MAX_CONTEXTS:
                ways.append(reach)
        todo += [(nxt, r, False) for nxt, r in _onwards(activity, el, reach, entering)]
    return found


def _onwards(activity: Activity, el: Any, reach: Reach,
             entering: bool) -> list[tuple[str, Reach]]:
    if isinstance(el, Branch):
        return [(p.next, reach) for p in el.paths if p.next]
    if isinstance(el, IssueCoupon):
        coupons = (*[c for c in reach.coupons if c != el.promotion], el.promotion)
        return [(el.next, Reach(reach.label, reach.event, coupons))] if el.next else []
    if isinstance(el, Wait):
        later = Reach(f"after the wait {el.id!r}", json.dumps(_timer(el.id)), ())
        return [(el.next, later)] if el.next else []
    if isinstance(el, Trigger) and not entering:
        out = []
        if el.next:
            kind = getattr(el, "type", "")
            out.append((el.next, Reach(f"after the {kind!r} trigger {el.id!r}",
                                       json.dumps(_entry_event(activity, cast(Element, el))),
                                       ())))
        if el.timeout is not None and el.timeout.next:
            out.append((el.timeout.next, Reach(f"after the timeout of {el.id!r}",
                                               json.dumps(_timer(el.id)), ())))
        return out
    nxt = getattr(el, "next", None)
    return [(nxt, reach)] if nxt else []


def context(activity: Activity, template: MessageTemplate, reach: Reach) -> dict[str, Any]:
    """The context send_message would build for the sample customer on this way."""
    state = sample_customer()
    profile = state.profile.model_dump(mode="json", exclude_none=True)
    profile["attributes"] = OpenMapping(profile.get("attributes", {}))
    coupons = {p: {"code": "K7QF2M9XRT4H", "promotion": p,
                   "expires_at": (SAMPLE_NOW + timedelta(days=30)).isoformat()}
               for p in reach.coupons}
    event = json.loads(reach.event)
    for key in ("parameters", "url_parameters"):
        if isinstance(event.get(key), dict):
            event[key] = OpenMapping(event[key])
    ctx: dict[str, Any] = {
        "event": {k: v for k, v in event.items() if v is not None},
        "coupons": coupons, "activity": {"id": activity.id, "name": activity.name},
        "customer": profile, "shop": {"name": "Shop", "url": "https://shop.example"},
        "cart": state.cart.model_dump(mode="json") if state.cart else None}
    if coupons:
        ctx["coupon"] = list(coupons.values())[-1]
    if activity.key is not None:
        ctx["run"] = {"key": "1001"}
    if isinstance(template, EmailTemplate):
        ctx["unsubscribe_url"] = "https://shop.example/unsubscribe?c=sample&t=sample"
    return {k: v for k, v in ctx.items() if v is not None}


def send_problems(activity: Activity, templates: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON path, reason) for every Send message whose template fails on some way to it."""
    out: list[tuple[str, str]] = []
    for i, ways in sorted(reaches(activity).items()):
        el = activity.elements[i]
        assert isinstance(el, SendMessage)
        template = templates.get(el.template)
        if template is None or template.channel != el.channel:
            continue  # reported by the catalog check
        for reach in ways:
            try:
                render(template, context(activity, template, reach), clean=False)
            except RenderError as e:
                event = json.loads(reach.event)
                where = f"{e.field}, {reach.label}" if e.field else reach.label
                out.append((f"$.elements[{i}].template",
                            f"{e} ({where}; its event has: {', '.join(sorted(event))})"))
                break
    return out


def template_render_problems(template: MessageTemplate) -> list[tuple[str, str]]:
    """(field, reason) for what fails whatever the customer: a generic sample context, and
    only failures that are not a missing value (those depend on the activity's context)."""
    generic = Activity.model_validate({"id": "sample", "name": "Sample", "elements": [
        {"id": "t", "type": "places_order", "next": "m"},
        {"id": "m", "type": "send_message", "channel": template.channel,
         "template": template.id}]})
    reach = Reach("", json.dumps(event_sample("OrderPlaced")), ("SAMPLE",))
    try:
        render(template, context(generic, template, reach), clean=False)
    except RenderError as e:
        if e.kind != "missing":
            return [(e.field or "text", str(e))]
    return []
