"""The seed examples of SPEC §2 that need no wait or daily check, end to end on embedded AWS:
events put to EventBridge with boto3 → effects read back from DynamoDB and SQS."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from dialogue.local import readback

from tests.e2e.conftest import NOW, Shop, example


def line(product: str, price: str, *categories: str, discount: str = "0") -> dict[str, object]:
    return {"product_id": product, "unit_price": price, "categories": list(categories),
            "discount": discount}


def order(number: str, *lines: dict[str, object], codes: tuple[str, ...] = ()) -> dict[str, object]:
    total = sum(Decimal(str(ln["unit_price"])) - Decimal(str(ln["discount"])) for ln in lines)
    return {"order_id": number, "lines": list(lines), "total": str(total),
            "promotion_codes": list(codes)}


def segments_of(shop: Shop, customer: str) -> set[str]:
    return set(readback.customers(shop.aws)[f"customer:{customer}"].segments)


def messages_by(shop: Shop) -> list[tuple[str, str, str]]:
    return sorted((m["subject"], m["activity_id"], m["template"])
                  for m in readback.message_jobs(shop.aws))


def test_1_buyers_of_golf_ski_and_tennis_items_join_the_sport_segments(shop: Shop):
    shop.load([example("01-sports-interests.json")])
    shop.publish("OrderPlaced", "frank", **order("o1", line("club", "90", "Golf"),
                                                 line("skis", "300", "Ski")))
    shop.publish("OrderPlaced", "jonas", **order("o2", line("racket", "120", "Tennis")))
    shop.publish("OrderPlaced", "lea", **order("o3", line("socks", "9", "Clothing")))
    shop.deliver()

    assert readback.segment_members(shop.aws, "golfers") == {"customer:frank"}
    assert readback.segment_members(shop.aws, "skiers") == {"customer:frank"}
    assert readback.segment_members(shop.aws, "tennis-players") == {"customer:jonas"}
    assert segments_of(shop, "lea") == set()


def test_2_searching_for_a_brand_adds_to_that_brands_interest_segment(shop: Shop):
    shop.load([example("02-brand-search.json")])
    shop.publish("SearchPerformed", "sofia", query="Rossignol Hero skis")
    shop.publish("SearchPerformed", "karim", query="tennis balls")
    shop.deliver()

    assert readback.segment_members(shop.aws, "interest-rossignol") == {"customer:sofia"}
    assert readback.segment_members(shop.aws, "interest-wilson") == set()
    assert segments_of(shop, "karim") == set()


def test_3_registration_grants_20_percent_eligibility_and_an_order_takes_it_away(shop: Shop):
    shop.load([example("03-eligible-20-add.json"), example("03-eligible-20-remove.json")])
    shop.publish("CustomerRegistered", "amelie", at=NOW - timedelta(days=1))
    shop.publish("CustomerRegistered", "frank", at=NOW - timedelta(days=1))
    shop.publish("OrderPlaced", "frank", **order("o1", line("skis", "300", "Ski")))
    shop.deliver()

    assert readback.segment_members(shop.aws, "eligible-20") == {"customer:amelie"}
    history = readback.customers(shop.aws)["customer:frank"].segment_history
    assert [(h.segment, h.change) for h in history] == [("eligible-20", "added"),
                                                        ("eligible-20", "removed")]


def test_3_outside_the_promotion_week_nobody_becomes_eligible(shop: Shop):
    shop.load([example("03-eligible-20-add.json")])
    shop.publish("CustomerRegistered", "amelie", at=NOW - timedelta(days=10))  # 24 November
    shop.deliver()

    assert readback.segment_members(shop.aws, "eligible-20") == set()


def test_6_registration_sends_the_thank_you_email(shop: Shop):
    shop.load([example("06-welcome.json")])
    shop.publish("CustomerRegistered", "lea", profile={"first_name": "Léa",
                                                       "email": "lea@example.com"},
                 consent={"email": True})
    shop.deliver()

    jobs = readback.message_jobs(shop.aws)
    assert [(j["subject"], j["channel"], j["template"]) for j in jobs] == [
        ("customer:lea", "email", "welcome")]
    # 18:00 UTC is 19:00 in Paris: inside the daytime window, so it goes out at once.
    assert jobs[0]["send_immediately"] is True


def test_7_customers_whose_spending_passes_1000_become_big_spenders(shop: Shop):
    shop.load([example("07-big-spenders.json")])
    shop.publish("OrderPlaced", "karim", at=NOW - timedelta(days=3),
                 **order("o1", line("tv", "700", "Electronics")))
    shop.publish("OrderPlaced", "karim", **order("o2", line("sound bar", "450", "Electronics")))
    shop.publish("OrderPlaced", "sofia", **order("o3", line("lamp", "80", "Home")))
    shop.deliver()

    assert readback.segment_members(shop.aws, "big-spenders") == {"customer:karim"}
    counters = readback.counters(shop.aws)["big-spenders"]
    assert counters["order"] == 3 and counters["add"] == 1


def test_9_buyers_of_boys_or_girls_items_become_kids_clothes_buyers(shop: Shop):
    shop.load([example("09-kids-clothes.json")])
    shop.publish("OrderPlaced", "amelie", **order("o1", line("dress", "35", "Girls", "Kids")))
    shop.publish("OrderPlaced", "jonas", **order("o2", line("jacket", "90", "Men")))
    shop.deliver()

    assert readback.segment_members(shop.aws, "kids-clothes-buyers") == {"customer:amelie"}


def test_12_repeatable_rewards_every_time_and_first_only_rewards_once(shop: Shop):
    shop.load([example(f"12-{name}.json") for name in (
        "coupon-per-order-repeatable", "coupon-per-order-first", "instore-coupon-repeatable",
        "instore-coupon-first", "social-thank-you-repeatable", "social-thank-you-first")])
    for n in (1, 2):
        shop.publish("OrderPlaced", "frank", at=NOW - timedelta(hours=3 - n),
                     **order(f"o{n}", line("skis", "300", "Ski"), codes=("INTERNET-EVENT-SALE",)))
        shop.publish("SocialParticipation", "frank", at=NOW - timedelta(hours=3 - n),
                     kind="review" if n == 1 else "like", product_id="skis")
    shop.deliver()

    per_activity: dict[str, int] = {}
    for c in readback.coupons(shop.aws):
        per_activity[c["activity_id"]] = per_activity.get(c["activity_id"], 0) + 1
    assert per_activity == {"coupon-per-order-repeatable": 2, "coupon-per-order-first": 1,
                            "instore-coupon-repeatable": 2, "instore-coupon-first": 1}
    thanks = [m for m in messages_by(shop) if m[1].startswith("social-thank-you")]
    assert [m[1] for m in thanks] == ["social-thank-you-first", "social-thank-you-repeatable",
                                      "social-thank-you-repeatable"]


def test_13_partner_visitors_email_responders_searchers_and_kids_buyers_are_segmented(
        shop: Shop):
    shop.load([example(f"13-{name}.json") for name in (
        "partner-referrals", "free-shipping-responders", "manufacturer-searchers",
        "kids-clothes-buyers")])
    shop.publish("PageVisited", "sofia", url="https://shop.example/ski",
                 referrer="https://partner.example/deals", url_parameters={"utm": "partner"})
    shop.publish("PageVisited", "karim", url="https://shop.example/", referrer="https://search.example/")
    shop.publish("CustomEvent", "jonas", name="EmailClicked",
                 parameters={"campaign": "free-shipping"})
    shop.publish("CustomEvent", "lea", name="EmailClicked", parameters={"campaign": "black-friday"})
    shop.publish("SearchPerformed", "amelie", query="rossignol")
    shop.publish("OrderPlaced", "frank", **order("o1", line("shirt", "20", "Boys")))
    shop.deliver()

    assert readback.segment_members(shop.aws, "partner-referrals") == {"customer:sofia"}
    assert readback.segment_members(shop.aws, "free-shipping-responders") == {"customer:jonas"}
    assert readback.segment_members(shop.aws, "manufacturer-searchers") == {"customer:amelie"}
    assert readback.segment_members(shop.aws, "kids-clothes-buyers") == {"customer:frank"}
