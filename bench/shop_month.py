"""A synthetic shop's month of events for `dialogue simulate` (bench/simulator.py): `customers`
customers, `events` events spread over `days` days from `start`, shaped like examples/events and
aimed at what examples/activities and examples/segments react to (registrations in the eligible-20
week, Rossignol/Wilson searches, partner referrals, carts left, orders in Ski/Golf/Tennis/kids'
clothes, in-store promotions, social participation, free-shipping clicks, birthdays).

One customer in ten registers during the month (their first event is the registration); the
others were customers before it and first appear by logging in or browsing. Seeded: the same
arguments give the same file.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 12, 1, tzinfo=UTC)  # the examples' month (eligible-20: 1-7 December)
NEW_CUSTOMERS = 0.1  # the share of customers who register during the month

PRODUCTS = [  # (product id, categories, manufacturer, unit price)
    ("sku-ross-hero-elite", ["Ski", "Skis"], "Rossignol", 899.0),
    ("sku-ross-pure-boots", ["Ski", "Ski boots"], "Rossignol", 389.0),
    ("sku-ski-gloves", ["Ski", "Accessories"], "Dakine", 49.0),
    ("sku-wilson-blade-98", ["Tennis", "Rackets"], "Wilson", 229.0),
    ("sku-tennis-balls", ["Tennis", "Balls"], "Head", 9.9),
    ("sku-golf-driver", ["Golf", "Drivers"], "Callaway", 449.0),
    ("sku-golf-balls", ["Golf", "Balls"], "Titleist", 39.0),
    ("sku-boys-jacket", ["Boys", "Clothes"], "Kidz", 59.0),
    ("sku-girls-fleece", ["Girls", "Clothes"], "Kidz", 45.0),
    ("sku-red-label-coat", ["Red label", "Clothes"], "Maison", 320.0),
    ("sku-running-shoes", ["Running", "Shoes"], "Asics", 119.0),
    ("sku-socks", ["Running", "Accessories"], "Asics", 12.0),
]
MIX = [  # (weight, kind)
    (34, "view"), (10, "category"), (8, "search"), (6, "page"), (10, "login"), (6, "logout"),
    (9, "cart"), (6, "order"), (1, "instore-order"), (2, "social"), (1, "email-click"),
    (2, "update"), (1, "custom"),
]
QUERIES = ["Rossignol", "Wilson", "ski boots", "running shoes", "kids jacket", "golf balls"]


class ShopMonth:
    def __init__(self, customers: int, seed: int = 2026):
        self.customers, self.rnd = customers, random.Random(seed)
        self.carts: dict[int, list[dict[str, Any]]] = {}

    def events(self, n: int, start: datetime = START, days: int = 30) -> list[dict[str, Any]]:
        """`n` events in time order; the first event of a new customer is their registration."""
        r, seen, out = self.rnd, set(), []
        seconds = sorted(r.randrange(days * 86400) for _ in range(n))
        for k, offset in enumerate(seconds):
            who = r.randrange(self.customers)
            at = start + timedelta(seconds=offset)
            if who not in seen and who % round(1 / NEW_CUSTOMERS) == 0:
                kind = "register"
            else:
                kind = r.choices([k for _, k in MIX], weights=[w for w, _ in MIX])[0]
            seen.add(who)
            out.append(self._envelope(kind, who, at, k))
        return out

    def _envelope(self, kind: str, who: int, at: datetime, k: int) -> dict[str, Any]:
        when = at.isoformat().replace("+00:00", "Z")
        detail_type, detail = self._detail(kind, who)
        if detail_type == "CustomEvent" and "name" not in detail:
            detail["name"] = "RecommendationClicked"
        return {"version": "0", "id": f"00000000-0000-4000-8000-{k:012d}", "source": "shop",
                "account": "123456789012", "time": when, "region": "eu-west-1", "resources": [],
                "detail-type": detail_type,
                "detail": {"event_id": f"evt-{k:07d}", "customer_id": f"cust-{who:05d}",
                           "personalization_id": f"p-{who:05d}", "occurred_at": when, **detail}}

    def _detail(self, kind: str, who: int) -> tuple[str, dict[str, Any]]:
        r = self.rnd
        pid, cats, brand, price = r.choice(PRODUCTS)
        match kind:
            case "register":
                day = r.randrange(365)
                return "CustomerRegistered", {
                    "profile": {"email": f"cust-{who:05d}@example.com",
                                "phone": f"+336{who:08d}", "first_name": "Alex",
                                "birthday": (datetime(1980, 1, 1) + timedelta(days=day * 30 % 365
                                             + 365 * (day % 30))).date().isoformat(),
                                "country": r.choice(["FR", "FR", "DE", "BE"]), "language": "fr"},
                    "consent": {"email": r.random() < 0.8, "sms": r.random() < 0.4,
                                "tracking": r.random() < 0.7}}
            case "view":
                return "ProductViewed", {"product_id": pid, "categories": cats,
                                         "manufacturer": brand}
            case "category":
                return "CategoryViewed", {"category": cats[1], "parent_categories": cats[:1]}
            case "search":
                return "SearchPerformed", {"query": r.choice(QUERIES)}
            case "page":
                partner = r.random() < 0.3
                return "PageVisited", {
                    "url": f"https://shop.example/{cats[0].lower()}",
                    "url_parameters": {"utm_source": "partner" if partner else "mail"},
                    "referrer": "https://partner.example/deals" if partner
                    else "https://search.example"}
            case "login" | "logout":
                return ("CustomerLoggedIn" if kind == "login" else "CustomerLoggedOut"), {}
            case "cart":
                cart = self.carts.setdefault(who, [])
                cart.append({"product_id": pid, "categories": cats, "quantity": 1,
                             "unit_price": price})
                return "CartUpdated", {"cart_id": f"cart-{who:05d}", "lines": cart[-5:]}
            case "order" | "instore-order":
                lines = self.carts.pop(who, None) or [{"product_id": pid, "categories": cats,
                                                       "quantity": 1, "unit_price": price}]
                lines = lines[-5:]
                codes = (["INSTORE-EVENT"] if kind == "instore-order"
                         else ["INTERNET-EVENT-SALE"] if r.random() < 0.1 else [])
                return "OrderPlaced", {
                    "order_id": f"ord-{who:05d}-{r.getrandbits(32):08x}", "lines": lines,
                    "total": round(sum(ln["unit_price"] for ln in lines), 2), "currency": "EUR",
                    **({"promotion_codes": codes} if codes else {})}
            case "social":
                kinds = ["review", "rating", "like", "comment"]
                return "SocialParticipation", {"kind": r.choice(kinds), "product_id": pid}
            case "email-click":
                return "CustomEvent", {"name": "EmailClicked", "parameters": {
                    "campaign": "free-shipping", "link": "https://shop.example/free-shipping"}}
            case "update":
                return "CustomerUpdated", {"profile": {"city": "Lyon"},
                                           "consent": {"email": r.random() < 0.9}}
            case _:
                return "CustomEvent", {"name": r.choice(["RecommendationClicked",
                                                         "CampaignViewed"]), "parameters": {}}


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    return path
