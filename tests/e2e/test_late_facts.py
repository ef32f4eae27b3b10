"""Newer facts win on the embedded AWS: an old registration arriving late does not give back a
consent the customer withdrew since."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dialogue.local import readback

from tests.e2e.conftest import EXAMPLES, NOW, ORDER, THANKS_BY_MAIL, Shop


def test_a_late_registration_does_not_undo_a_withdrawn_consent(shop: Shop, tmp_path: Path):
    shop.load([THANKS_BY_MAIL], tmp=tmp_path)
    shop.aws.upload_catalog([], [], sorted((EXAMPLES / "templates").glob("*.json")))
    registration = {"profile": {"first_name": "Ann", "email": "ann@example.com"},
                    "consent": {"email": True, "tracking": True}}
    shop.publish("CustomerRegistered", "ann", at=NOW - timedelta(days=2), **registration)
    shop.publish("CustomerUpdated", "ann", at=NOW - timedelta(days=1),
                 consent={"email": False})  # the unsubscribe page
    shop.deliver()
    # The registration again, as a replay from an archive or the shop's retry would bring it.
    shop.publish("CustomerRegistered", "ann", at=NOW - timedelta(days=2), **registration)
    shop.deliver()
    shop.publish("OrderPlaced", "ann", **ORDER)
    shop.deliver()

    assert readback.sent_emails(shop.aws) == []
    [job] = readback.message_jobs(shop.aws)
    assert job["status"] == "suppressed" and "consent" in job["reason"]
