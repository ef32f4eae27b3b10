"""The benchmark's activities and segments, generated in code (JSON-ready dicts).

`activities(n)` cycles through ten activity shapes (six event triggers, targets of every kind,
branches, waits and all four actions). Variant 0 of each shape uses the names the event mix
sends (a "ski" order, a "rossignol" search, the SUMMER promotion...); later variants use names
no event carries, so a catalog of 100 activities fires about as often as one of 10 and the
difference in engine cost is the cost of activities an event meets but does not fire. Every
activity carries journey controls (`controls`).
"""

from __future__ import annotations

from typing import Any

CATEGORIES = ["ski", "tennis", "golf", "kids", "shoes", "jackets", "bags", "watches"]
BRANDS = ["rossignol", "wilson", "salomon", "head", "babolat", "callaway"]
SOCIAL = ["review", "rating", "like", "comment"]
N_SHAPES = 10  # activity shapes; variant v of shape k is activity number 10 * v + k


def _variant_name(names: list[str], v: int, prefix: str) -> str:
    """Variant 0 is a name the event mix uses; the others are names no event carries."""
    return names[0] if v == 0 else f"{prefix}-{v}"


def activities(n: int, with_controls: bool = True) -> list[dict[str, Any]]:
    """`n` activity documents (JSON-ready dicts), all active and repeatable but one; with the
    journey controls (`controls`) or, to measure what they cost, without them."""
    return [_activity(i, with_controls) for i in range(n)]


def segments(n: int) -> list[dict[str, Any]]:
    """The managed segments the first `n` activities add to, remove from or target."""
    ids = {"vip", "newsletter"}
    for doc in activities(n):
        for el in doc["elements"]:
            if "segment" in el:
                ids.add(el["segment"])
    return [{"schema_version": 1, "id": s, "name": s.replace("-", " ").title(),
             "kind": "managed", "managed_by_activities": True} for s in sorted(ids)]


def _activity(i: int, with_controls: bool = True) -> dict[str, Any]:
    shape, v = i % N_SHAPES, i // N_SHAPES
    build = _SHAPES[shape]
    name, repeatable, elements = build(v)
    return {"schema_version": 1, "id": f"bench-{i:03d}-{elements[0]['type'].replace('_', '-')}",
            "name": f"{name} ({i})", "state": "active", "time_zone": "Europe/Paris",
            "repeatable": repeatable, "elements": elements,
            **(controls(repeatable) if with_controls else {})}


def controls(repeatable: bool) -> dict[str, Any]:
    """Journey controls on every activity, loose enough to change (almost) no action of the
    event mix: their cost is what is measured (caps, goals, re-entry rules and the holdout are
    decided from the one state read; quiet hours at send time)."""
    found: dict[str, Any] = {
        "frequency_cap": {"limits": [{"messages": 50, "per": {"unit": "days", "amount": 1}},
                                     {"messages": 100, "per": {"unit": "weeks", "amount": 1},
                                      "channel": "email"}]},
        "quiet_hours": {"start": "23:59", "end": "00:00"},
        "goals": [{"event": "CustomerLoggedIn", "parameters": [
            {"name": "never", "match": {"rule": "exact", "value": "set"}}]}],
        "holdout": {"percent": 0.01}}  # 1 customer in 10,000 per activity
    if repeatable:
        found["max_entries"] = 10_000
        found["min_interval"] = {"unit": "minutes", "amount": 1}
    return found


def _order_thanks(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    category = _variant_name(CATEGORIES, v, "category")
    return "Order in a category: thank you and file as a buyer", True, [
        {"id": "order", "type": "places_order", "categories": [category], "next": "repeat"},
        {"id": "repeat", "type": "target", "next": "email", "conditions": [
            {"type": "purchase_history", "measure": "orders", "aggregate": "count",
             "compare": {"op": "at_least", "value": 1}, "categories": [category],
             "time_frame": {"kind": "last_days", "days": 365}}]},
        {"id": "email", "type": "send_message", "channel": "email",
         "template": f"thanks-{category}", "next": "file"},
        {"id": "file", "type": "add_to_segment", "segment": f"buyers-{category}",
         "for_days": 365},
    ]


def _brand_search(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    brand = _variant_name(BRANDS, v, "brand")
    return "Brand search: interest segment", True, [
        {"id": "search", "type": "searches",
         "keyword": {"rule": "contains", "value": brand}, "next": "new"},
        {"id": "new", "type": "branch", "mode": "first", "paths": [
            {"name": "not yet interested", "next": "add", "conditions": [
                {"type": "segment", "match": "none", "segments": [f"interest-{brand}"]},
                {"type": "online_behaviour", "kind": "search", "times": 1,
                 "match": {"rule": "contains", "value": brand},
                 "time_frame": {"kind": "last_days", "days": 30}}]},
            {"name": "already interested", "next": "sms", "conditions": [
                {"type": "attribute", "field": "phone", "op": "exists"}]},
        ]},
        {"id": "add", "type": "add_to_segment", "segment": f"interest-{brand}", "for_days": 365},
        {"id": "sms", "type": "send_message", "channel": "sms", "template": f"news-{brand}"},
    ]


def _wishlist(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    event = "WishlistAdded" if v == 0 else f"custom-event-{v}"
    return "Wish list: reminder two days later if still in the cart", True, [
        {"id": "wish", "type": "wait_for_event", "event": event,
         "parameters": [{"name": "product_id", "match": {"rule": "any"}}], "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 2, "unit": "days", "next": "cart"},
        {"id": "cart", "type": "target", "next": "remind", "conditions": [
            {"type": "cart", "have": "any", "value": {"op": "at_least", "value": 20}}]},
        {"id": "remind", "type": "send_message", "channel": "email", "template": "wishlist"},
    ]


def _social(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    kind = SOCIAL[v % len(SOCIAL)]
    times = 1 if v == 0 else 10 + v  # later variants need more acts than a customer makes
    return "Social participation: coupon for contributors", True, [
        {"id": "social", "type": "social_participation", "kind": kind, "times": times,
         "time_frame": {"kind": "last_days", "days": 90}, "next": "who"},
        {"id": "who", "type": "target", "next": "coupon", "conditions": [
            {"type": "social", "kind": "any", "times": 1,
             "time_frame": {"kind": "last_days", "days": 90}}]},
        {"id": "coupon", "type": "issue_coupon", "promotion": f"THANKS-{v}", "next": "email"},
        {"id": "email", "type": "send_message", "channel": "email", "template": "thanks-social"},
    ]


def _promotion(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    code = "SUMMER" if v == 0 else f"PROMO{v}"
    return "Checked out with a promotion: loyalty branch", True, [
        {"id": "promo", "type": "checks_out_with_promotion", "promotion": code, "next": "split"},
        {"id": "split", "type": "branch", "mode": "all", "paths": [
            {"name": "big spenders", "next": "vip", "conditions": [
                {"type": "purchase_history", "aggregate": "value",
                 "compare": {"op": "at_least", "value": 500},
                 "time_frame": {"kind": "last_days", "days": 365}}]},
            {"name": "everyone", "next": "coupon", "conditions": []},
        ]},
        {"id": "vip", "type": "add_to_segment", "segment": "vip"},
        {"id": "coupon", "type": "issue_coupon", "promotion": f"{code}-NEXT"},
    ]


def _big_order(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    category = _variant_name(CATEGORIES[1:], v, "category-big")
    return "Big order in a category: browsing-based cross-sell", True, [
        {"id": "order", "type": "places_order", "min_total": 150 + 10 * v,
         "categories": [category], "next": "browsed"},
        {"id": "browsed", "type": "target", "next": "email", "conditions": [
            {"type": "browsing", "kind": "category", "ids": [category, "shoes"], "have": "any",
             "time_frame": {"kind": "last_days", "days": 60}},
            {"type": "day_time", "start": "07:00", "end": "22:00", "time_zone": "Europe/Paris"}]},
        {"id": "email", "type": "send_message", "channel": "email",
         "template": f"cross-sell-{category}"},
    ]


def _exact_search(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    term = "gift card" if v == 0 else f"term-{v}"
    return "Exact search, three times a week: help e-mail", True, [
        {"id": "search", "type": "searches", "keyword": {"rule": "exact", "value": term},
         "times": 3, "time_frame": {"kind": "last_days", "days": 7}, "next": "email"},
        {"id": "email", "type": "send_message", "channel": "email", "template": "search-help"},
    ]


def _category_page(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    category = "outlet" if v == 0 else f"page-{v}"
    return "Outlet page: newsletter for buyers", True, [
        {"id": "page", "type": "wait_for_event", "event": "CategoryViewed",
         "parameters": [{"name": "category", "match": {"rule": "exact", "value": category}}],
         "times": 2, "time_frame": {"kind": "last_days", "days": 14}, "next": "buyer"},
        {"id": "buyer", "type": "target", "next": "file", "conditions": [
            {"type": "purchase_history", "measure": "items", "aggregate": "count",
             "compare": {"op": "at_least", "value": 3}}]},
        {"id": "file", "type": "add_to_segment", "segment": "newsletter", "for_days": 90},
    ]


def _second_promotion(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    code = f"WINTER{v}"
    return "Promotion used twice: leave the newsletter, join VIP", True, [
        {"id": "promo", "type": "checks_out_with_promotion", "promotion": code, "times": 2,
         "next": "who"},
        {"id": "who", "type": "target", "next": "leave", "conditions": [
            {"type": "segment", "match": "any", "segments": ["newsletter"]}]},
        {"id": "leave", "type": "remove_from_segment", "segment": "newsletter", "next": "vip"},
        {"id": "vip", "type": "add_to_segment", "segment": "vip"},
    ]


def _welcome(v: int) -> tuple[str, bool, list[dict[str, Any]]]:
    if v > 0:  # one registration dialogue per shop; later variants follow orders instead
        return _order_thanks(v + 10)
    return "Welcome: e-mail, then a coupon if no order after three days", False, [
        {"id": "registered", "type": "registers", "next": "welcome"},
        {"id": "welcome", "type": "send_message", "channel": "email", "template": "welcome",
         "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 3, "unit": "days", "next": "no-order"},
        {"id": "no-order", "type": "target", "next": "coupon", "conditions": [
            {"type": "purchase_history", "compare": {"op": "exactly", "value": 0}}]},
        {"id": "coupon", "type": "issue_coupon", "promotion": "WELCOME-10"},
    ]


_SHAPES = [_order_thanks, _brand_search, _wishlist, _social, _promotion, _big_order,
           _exact_search, _category_page, _second_promotion, _welcome]
