"""`dialogue why`: the explanation agrees with the engine's decisions and names the values."""

from __future__ import annotations

from datetime import timedelta

from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import decide
from dialogue.engine.explain import Message, explain
from dialogue.model.customer import ConsentState, CustomerState

from .conftest import NOW, activity, event

BIG_SPENDERS = activity(
    {"id": "order", "type": "places_order", "next": "spent"},
    {"id": "spent", "type": "target", "next": "skiers", "conditions": [
        {"type": "purchase_history", "aggregate": "value",
         "compare": {"op": "at_least", "value": 1000}}]},
    {"id": "skiers", "type": "target", "next": "mail", "conditions": [
        {"type": "segment", "segments": ["skiers"]}]},
    {"id": "mail", "type": "send_message", "channel": "email", "template": "t"},
    repeatable=True)


def _order(state: CustomerState, total: str, n: int) -> CustomerState:
    placed = event("OrderPlaced", order_id=f"o{n}", total=total, occurred_at=NOW,
                   lines=[{"product_id": "p", "unit_price": total}])
    return decide(state, placed, Catalog([BIG_SPENDERS]), NOW).state


def _lines(state: CustomerState, messages: list[Message] | None = None) -> dict[str, str]:
    out = explain(state, BIG_SPENDERS, NOW + timedelta(minutes=1), messages)
    return {ln.element_id: f"{ln.status}: {ln.text}" for ln in out.lines}


def test_a_customer_under_the_threshold_is_told_the_value_compared() -> None:
    state = _order(CustomerState(subject="customer:c1"), "740", 1)
    lines = _lines(state)
    assert lines["order"] == "passed: entered"
    assert lines["spent"] == "stopped: purchase history orders value 740.00 < 1000"
    assert lines["skiers"].startswith("not reached")


def test_past_the_threshold_the_next_failing_condition_is_named() -> None:
    state = _order(_order(CustomerState(subject="customer:c1"), "740", 1), "300", 2)
    lines = _lines(state)
    assert lines["spent"] == "passed: purchase history orders value 1040.00 >= 1000"
    assert lines["skiers"] == "stopped: not in segment skiers"


def test_a_message_without_consent_and_one_held_for_the_send_time() -> None:
    state = _order(_order(CustomerState(subject="customer:c1"), "740", 1), "300", 2)
    state.segments["skiers"] = state.segments.get("skiers") or _membership()
    assert _lines(state)["mail"] == "reached: email 't': no email marketing consent"
    held = [Message("mail", "scheduled", "release at x", "2025-06-16 09:00 UTC")]
    assert _lines(state, held)["mail"] == \
        "scheduled: email 't': held for the send time 09:00 UTC (released 2025-06-16)"
    state.consent = ConsentState(email=True)
    assert "no e-mail address" in _lines(state)["mail"]


def test_a_customer_who_never_ordered_has_not_entered() -> None:
    out = explain(CustomerState(subject="customer:c2"), BIG_SPENDERS, NOW)
    assert out.entered == 0
    assert out.headline == "never entered: no order (no orders)"
    assert {ln.element_id: ln.status for ln in out.lines}["spent"] == "stopped"


def test_an_activity_outside_its_dates_says_so() -> None:
    later = activity({"id": "reg", "type": "registers", "next": "mail"},
                     {"id": "mail", "type": "send_message", "channel": "sms", "template": "t"},
                     start_date="2030-01-01")
    out = explain(CustomerState(subject="customer:c2"), later, NOW)
    assert out.headline == "never entered: the activity starts on 2030-01-01"


def _membership():  # type: ignore[no-untyped-def]
    from dialogue.model.customer import Membership

    return Membership(since=NOW)


def test_the_shard_count_and_tables_are_read_from_the_stack() -> None:
    from dialogue.local.insight import StackRef

    class Cfn:
        def describe_stacks(self, StackName: str) -> dict:  # noqa: N803 (boto3's name)
            return {"Stacks": [{
                "Outputs": [{"OutputKey": "TableName", "OutputValue": "t"},
                            {"OutputKey": "CustomersTableName", "OutputValue": "c"},
                            {"OutputKey": "CatalogBucketName", "OutputValue": "b"}],
                "Parameters": [{"ParameterKey": "SegmentShards", "ParameterValue": "64"},
                               {"ParameterKey": "TimeZone", "ParameterValue": "Europe/Paris"}]}]}

    assert StackRef.from_cloudformation(Cfn(), "shop") == StackRef("t", "c", 64, "Europe/Paris",
                                                                   "b")
