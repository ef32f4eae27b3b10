"""Branch on a mail's delivery or bounce end to end (issue 14, point 8), on embedded AWS and the
simulated clock: SES's `Email Delivered` / `Email Bounced` reach the default bus as SES
publishes them (a configuration set's EventBridge destination), the template's rule takes them
to the SES events function, and the customer waiting for that outcome goes on its path; the
others take the timeout's path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.e2e.test_time import World, custom, local, registers

BOUNCE_TO_SMS = {
    "id": "bounce-sms", "name": "A welcome mail; bounced within 2 days: an SMS instead",
    "elements": [
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True, "next": "bounced"},
        {"id": "bounced", "type": "message_outcome", "message": "mail", "outcome": "bounced",
         "next": "sms", "timeout": {"unit": "days", "amount": 2}},
        {"id": "sms", "type": "send_message", "channel": "sms", "template": "weekend-sale",
         "send_immediately": True}]}

DELIVERED_COUPON = {
    "id": "delivered-coupon", "name": "A sale mail; delivered within a day: a coupon",
    "elements": [
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True, "next": "delivered"},
        {"id": "delivered", "type": "message_outcome", "message": "mail", "outcome": "delivered",
         "next": "coupon", "timeout": {"unit": "days", "amount": 1, "next": "no-mail"}},
        {"id": "coupon", "type": "issue_coupon", "promotion": "DELIVERED-5"},
        {"id": "no-mail", "type": "issue_coupon", "promotion": "NOT-DELIVERED"}]}


def ses_event(job: dict[str, Any], outcome: str, at: str) -> dict[str, Any]:
    """SES's `Email Delivered` or `Email Bounced` for the mail of `job`, on the default bus,
    with the tags send_message gave the mail (fields as in SES's event publishing records:
    https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html)."""
    from dialogue.delivery.tracking import message_tags
    from dialogue.model.effects import MessageQueued

    payload = {k: v for k, v in job.items() if k not in ("status", "reason", "sent_at")}
    tags = {k: [v] for k, v in message_tags(MessageQueued.model_validate(payload)).items()}
    to = f"{job['subject'].split(':', 1)[1]}@example.com"
    mail = {"timestamp": at, "messageId": f"m-{job['template']}", "source": "news@shop.example",
            "destination": [to], "tags": tags}
    if outcome == "delivered":
        detail_type, detail = "Email Delivered", {
            "eventType": "Delivery", "mail": mail,
            "delivery": {"timestamp": at, "processingTimeMillis": 546, "recipients": [to],
                         "smtpResponse": "250 2.6.0 Message received",
                         "reportingMTA": "a8-70.smtp-out.amazonses.com"}}
    else:
        detail_type, detail = "Email Bounced", {
            "eventType": "Bounce", "mail": mail,
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "bouncedRecipients": [{"emailAddress": to, "action": "failed",
                                              "status": "5.1.1"}],
                       "timestamp": at, "feedbackId": "f-1"}}
    return {"Source": "aws.ses", "DetailType": detail_type, "Detail": json.dumps(detail)}


def test_a_bounce_takes_the_sms_fallback_a_delivery_the_delivered_path_neither_the_timeout(
        world: World):
    world.load([BOUNCE_TO_SMS, DELIVERED_COUPON])
    world.run([registers(n, "2027-01-04T10:00:00Z", sms=True) for n in ("nia", "ole", "pia")],
              datetime(2027, 1, 4, tzinfo=UTC), 1)
    mail = {(j["subject"].split(":")[1], j["template"]): j for j in world.jobs()}
    world.at(datetime(2027, 1, 5, 8, tzinfo=UTC))
    entries = [ses_event(mail["nia", "welcome"], "bounced", "2027-01-05T08:00:00Z"),
               ses_event(mail["nia", "ski-sale"], "bounced", "2027-01-05T08:00:00Z"),
               ses_event(mail["ole", "welcome"], "delivered", "2027-01-05T08:00:00Z"),
               ses_event(mail["ole", "ski-sale"], "delivered", "2027-01-05T08:00:00Z")]
    assert world.aws.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    world.settle()
    world.run([], datetime(2027, 1, 5, 8, 15, tzinfo=UTC), 3)

    sms = [(j["subject"], j["template"], local(j["sent_at"])) for j in world.jobs()
           if j["channel"] == "sms"]
    assert sms == [("customer:nia", "weekend-sale", "01-05 09:00")]  # the bounce's fallback
    assert len(world.sms()) == 1
    assert {c["subject"]: c["promotion"] for c in world.coupons()} == {
        "customer:nia": "NOT-DELIVERED", "customer:ole": "DELIVERED-5",
        "customer:pia": "NOT-DELIVERED"}
    [nia_kept] = [o for o in world.customer("nia").behaviour
                  if o.kind == "EmailBounced" and o.fields["template"] == "welcome"]
    assert nia_kept.fields["bounce_type"] == "Permanent"


def test_the_price_drop_example_texts_a_bounced_address_at_once_and_an_unopened_mail_later(
        world: World):
    """examples/activities/14-price-drop-fallback.json: a bounce → the SMS at once; no bounce
    within a day, then no open within 2 more days → the SMS then."""
    world.load(["14-price-drop-fallback.json"])
    world.run([registers(n, "2027-01-04T09:00:00Z", sms=True) for n in ("nia", "pia")]
              + [custom(n, "2027-01-04T10:00:00Z", "PriceDrop") for n in ("nia", "pia")],
              datetime(2027, 1, 4, tzinfo=UTC), 1)
    mail = {j["subject"].split(":")[1]: j for j in world.jobs() if j["template"] == "ski-sale"}
    assert set(mail) == {"nia", "pia"}
    world.at(datetime(2027, 1, 5, 8, tzinfo=UTC))
    bounce = ses_event(mail["nia"], "bounced", "2027-01-05T08:00:00Z")
    assert world.aws.client("events").put_events(Entries=[bounce])["FailedEntryCount"] == 0
    world.settle()
    world.run([], datetime(2027, 1, 5, 8, 15, tzinfo=UTC), 4)

    sms = sorted((j["subject"], local(j["sent_at"])) for j in world.jobs()
                 if j["channel"] == "sms")
    assert sms == [("customer:nia", "01-05 09:00"),  # the bounce: at the next send time
                   ("customer:pia", "01-08 09:00")]  # 1 day + 2 days without an open
