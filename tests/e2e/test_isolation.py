"""On embedded AWS: a document that fails in the engine costs only itself. An order that enters a
poisoned activity and a good one gets the good one's coupon and e-mail; the failure is logged at
ERROR and counted, and the event is not dead-lettered."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from dialogue.local import readback
from dialogue.model import activity as activity_model

from tests.e2e.conftest import EXAMPLES, ORDER, THANKS_BY_MAIL, Shop

# A wait of 3,000,000 days: validation refuses it now, so the bound is lifted below to stand for a
# document that got through (an older release's catalog, a bound missed somewhere).
POISONED = {
    "id": "poisoned", "name": "Overflows", "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "NEVER", "next": "pause"},
        {"id": "pause", "type": "wait", "amount": 3_000_000, "unit": "days", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "order-coupon"}]}


def test_an_order_gets_the_good_activitys_coupon_and_mail_when_another_activity_fails(
        shop: Shop, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(activity_model.MAX_AMOUNT, "days", 10**9)
    shop.load([POISONED, THANKS_BY_MAIL], tmp=tmp_path)
    shop.aws.upload_catalog([], [], sorted((EXAMPLES / "templates").glob("*.json")))
    shop.publish("CustomerRegistered", "frank",
                 profile={"first_name": "Frank", "email": "frank@example.com"},
                 consent={"email": True, "sms": False, "tracking": True})
    shop.publish("OrderPlaced", "frank", **ORDER)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        shop.aws.drain()

    [coupon] = readback.coupons(shop.aws)
    assert coupon["promotion"] == "THANK-YOU-5"  # the good activity's, not the poisoned one's
    [mail] = readback.sent_emails(shop.aws)
    assert coupon["code"] in mail.raw_data
    assert readback.rejected_events(shop.aws) == []  # the order was applied, not dead-lettered
    frank = readback.customers(shop.aws)["customer:frank"]
    assert "poisoned" not in frank.journeys and frank.journeys["thanks"].entries == 1

    errors = [r.getMessage() for r in caplog.records
              if r.levelname == "ERROR" and r.name == "dialogue"]
    assert any(e.startswith("activity skipped: activity poisoned : element pause : event ")
               and e.endswith("OverflowError: date value out of range") for e in errors), errors
    metrics = [json.loads(line) for line in printed.getvalue().splitlines() if '"_aws"' in line]
    assert sum(m.get("ActivityErrors", [0])[0] for m in metrics) == 1, metrics


def test_a_document_nested_a_thousand_levels_deep_in_s3_is_skipped_reported_and_counted(
        shop: Shop, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    deep = tmp_path / "deep.json"
    deep.write_text('{"id": "deep", "name": "Deep", "elements": ' + "[" * 1_000 + "]" * 1_000
                    + "}")
    shop.load([THANKS_BY_MAIL], tmp=tmp_path)
    shop.aws.upload_catalog([deep], [], sorted((EXAMPLES / "templates").glob("*.json")))
    shop.publish("CustomerRegistered", "lea",
                 profile={"first_name": "Lea", "email": "lea@example.com"},
                 consent={"email": True, "sms": False, "tracking": True})
    shop.publish("OrderPlaced", "lea", **ORDER)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        shop.aws.drain()

    [coupon] = readback.coupons(shop.aws)
    [mail] = readback.sent_emails(shop.aws)
    assert coupon["code"] in mail.raw_data
    assert readback.rejected_events(shop.aws) == []
    bucket = shop.aws.s.name("CatalogBucket")
    errors = [r.getMessage() for r in caplog.records
              if r.levelname == "ERROR" and r.name == "dialogue"]
    assert (f"invalid catalog document: s3://{bucket}/activities/deep.json : line 1 column 75 : "
            "nested deeper than 32 levels of objects and lists") in errors, errors
    metrics = [json.loads(line) for line in printed.getvalue().splitlines() if '"_aws"' in line]
    assert any(m.get("InvalidDocuments") == [1.0] for m in metrics), metrics
