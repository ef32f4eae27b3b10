"""The benchmark's shop events (EventBridge envelopes) and a customer state with some history.

The event mix matches `dialogues.activities`: about one event in ten can fire an activity.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dialogue.model.customer import (
    CustomerState,
    Instance,
    Journey,
    LineRecord,
    Membership,
    Occurrence,
    OrderRecord,
)
from dialogues import CATEGORIES, SOCIAL

SOURCE = "shop"

# --- events ---------------------------------------------------------------------------------
# (weight, kind): the kinds marked * can fire an activity; the others match none.
MIX = [
    (39, "view"), (12, "category"), (12, "search"), (10, "page"), (8, "cart"), (6, "login"),
    (4, "order*"), (1, "promo-order*"), (3, "brand-search*"), (1, "social*"), (1, "wish*"),
    (1, "register*"), (2, "order"),
]


class EventMaker:
    """Shop events (EventBridge envelopes) of the mix above, from a seeded random source."""

    def __init__(self, seed: int, start: datetime):
        self.rnd, self.at = random.Random(seed), start

    def envelope(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        self.at += timedelta(seconds=self.rnd.randint(1, 20))
        when = self.at.isoformat().replace("+00:00", "Z")
        return {"version": "0", "id": str(uuid.UUID(int=self.rnd.getrandbits(128))),
                "source": SOURCE, "account": "123456789012", "region": "eu-west-1",
                "resources": [], "detail-type": detail_type, "time": when,
                "detail": {"event_id": f"e-{self.rnd.getrandbits(64):016x}", "occurred_at": when,
                           **detail}}

    def event(self, who: dict[str, str]) -> dict[str, Any]:
        kind = self.rnd.choices([k for _, k in MIX], weights=[w for w, _ in MIX])[0]
        r = self.rnd
        product = f"p{r.randint(1, 5000)}"
        match kind:
            case "view":
                return self.envelope("ProductViewed", {**who, "product_id": product,
                                     "categories": r.sample(CATEGORIES, 2), "manufacturer": "acme"})
            case "category":
                return self.envelope("CategoryViewed", {**who, "category": r.choice(CATEGORIES),
                                                        "parent_categories": ["sports"]})
            case "search":
                return self.envelope("SearchPerformed", {**who, "query": r.choice(
                    ["blue jacket", "running shoes", "tennis balls", "kids helmet", "socks"])})
            case "page":
                return self.envelope("PageVisited", {**who, "url": "https://shop.example/help",
                                                     "url_parameters": {"utm_source": "mail"},
                                                     "referrer": "https://search.example"})
            case "cart":
                return self.envelope("CartUpdated", {**who, "cart_id": f"cart-{r.randint(1, 99)}",
                                                     "lines": [{"product_id": product,
                                                                "categories": ["bags"],
                                                                "unit_price": "35.00"}]})
            case "login":
                return self.envelope("CustomerLoggedIn", who)
            case "order*" | "promo-order*" | "order":
                category = CATEGORIES[0] if kind == "order*" else "watches"
                codes = ["SUMMER"] if kind == "promo-order*" else []
                return self.envelope("OrderPlaced", {
                    **who, "order_id": f"o-{r.getrandbits(48):012x}", "promotion_codes": codes,
                    "total": "129.90", "lines": [
                        {"product_id": product, "categories": [category], "manufacturer": "acme",
                         "quantity": 1, "unit_price": "129.90"}]})
            case "brand-search*":
                return self.envelope("SearchPerformed", {**who, "query": "Rossignol skis"})
            case "social*":
                return self.envelope("SocialParticipation", {**who, "kind": "review",
                                                             "product_id": product})
            case "wish*":
                return self.envelope("CustomEvent", {**who, "name": "WishlistAdded",
                                                     "parameters": {"product_id": product}})
            case _:  # register*
                return self.envelope("CustomerRegistered", {
                    **who, "profile": {"email": "someone@example.com", "country": "FR"},
                    "consent": {"email": True}})

    def stream(self, n: int, customers: int, guests: int = 0) -> list[dict[str, Any]]:
        """`n` events spread over `customers` customers and `guests` guest browsers."""
        out = []
        for _ in range(n):
            k = self.rnd.randrange(customers + guests)
            who = ({"customer_id": f"c{k:05d}"} if k < customers
                   else {"personalization_id": f"g{k:05d}"})
            out.append(self.event(who))
        return out


# --- a customer with some history --------------------------------------------------------------
def customer_state(now: datetime, orders: int = 20, behaviour: int = 100,
                   seed: int = 7) -> CustomerState:
    """A registered customer: `orders` orders, `behaviour` occurrences, three segments, journeys
    in a few activities (one parked at a wait)."""
    r = random.Random(seed)
    state = CustomerState(subject="customer:c00001", registered_at=now - timedelta(days=400))
    state.profile = state.profile.model_copy(update={"email": "c1@example.com", "country": "FR",
                                                     "phone": "+33600000001"})
    state.consent.email = True
    for k in range(orders):
        at = now - timedelta(days=360 - 18 * k)
        lines = [LineRecord(product_id=f"p{r.randint(1, 5000)}",
                            categories=r.sample(CATEGORIES, 2), manufacturer="acme",
                            quantity=r.randint(1, 3), value=Decimal("39.90"))
                 for _ in range(r.randint(1, 3))]
        total = sum((ln.value for ln in lines), Decimal(0))
        state.orders.append(OrderRecord(order_id=f"old-{k}", at=at,
                                        total=total, lines=lines,
                                        promotion_codes=["SUMMER"] if k % 7 == 0 else []))
        state.total_spent += total
    state.order_count = orders
    kinds = ["ProductViewed", "CategoryViewed", "SearchPerformed", "PageVisited",
             "SocialParticipation"]
    for k in range(behaviour):
        kind = kinds[k % len(kinds)]
        fields = {"ProductViewed": {"product_id": f"p{k}", "manufacturer": "acme"},
                  "CategoryViewed": {"category": r.choice(CATEGORIES)},
                  "SearchPerformed": {"query": r.choice(["ski boots", "wilson racket", "socks"])},
                  "PageVisited": {"url": "https://shop.example/", "referrer": ""},
                  "SocialParticipation": {"kind": r.choice(SOCIAL), "product_id": f"p{k}"}}[kind]
        tags = r.sample(CATEGORIES, 2) if kind in ("ProductViewed", "CategoryViewed") else []
        state.behaviour.append(Occurrence(at=now - timedelta(hours=8 * (behaviour - k)),
                                          kind=kind, fields=fields, tags=tags))
    for seg in ("vip", "newsletter", "interest-wilson"):
        state.segments[seg] = Membership(since=now - timedelta(days=100), by="bench-000")
    state.journeys["bench-000-places-order"] = Journey(entries=4,
                                                       last_entered_at=now - timedelta(days=20))
    state.journeys["bench-002-wait-for-event"] = Journey(
        entries=1, last_entered_at=now - timedelta(hours=5),
        waiting=[Instance(entry=1, element="wait", since=now - timedelta(hours=5),
                          due_at=now + timedelta(days=2) - timedelta(hours=5))])
    for k in range(120):  # events of the last 40 days: those of the window are remembered
        state.remember(f"old-{k}", now - timedelta(hours=8 * (120 - k)))
    state.version = 57
    return state


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
