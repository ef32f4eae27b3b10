"""SES opens and clicks end to end on embedded AWS: an activity's e-mail goes out through SES with
its tags, SES's `Email Opened` / `Email Clicked` event comes back on the default bus (published
here as SES would: moto generates none), and the customer's behaviour records it."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dialogue import bootstrap
from dialogue.local import readback
from dialogue.model.customer import Occurrence

from tests.e2e.conftest import EXAMPLES, NOW, ORDER, THANKS_BY_MAIL, Shop

CLICKED_THANKS = {  # a click on the thank-you mail files the customer
    "id": "clicked-thanks", "name": "Clicked the thank-you mail", "elements": [
        {"id": "clicked", "type": "wait_for_event", "event": "EmailClicked",
         "parameters": [{"name": "campaign", "match": {"rule": "exact", "value": "thanks"}}],
         "next": "file"},
        {"id": "file", "type": "add_to_segment", "segment": "free-shipping-responders"}]}
RESPONDERS = "free-shipping-responders.json"  # managed: activities file customers in it
OPENED = {"schema_version": 1, "id": "opened-thanks", "name": "Opened the thank-you mail",
          "kind": "rule", "rule": {"field": "emails_opened.count", "op": "greater", "value": 0,
                                   "parameters": {"campaign": "thanks"}}}


class SesSpy:
    """What send_message asked SES for (SendEmail's parameters) and the MessageId SES answered:
    moto keeps no tags, and the events SES publishes carry them."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def install(self) -> None:
        """On the current send_message client (after the catalog's upload rebuilt it)."""
        client = bootstrap.delivery_service().mailer._ses  # type: ignore[attr-defined]
        client.meta.events.register("before-parameter-build.sesv2.SendEmail", self._params)
        client.meta.events.register("after-call.sesv2.SendEmail", self._answer)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))

    def _answer(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls[-1]["MessageId"] = parsed["MessageId"]


@pytest.fixture
def ses(shop: Shop) -> Iterator[SesSpy]:
    yield SesSpy()
    bootstrap.reset()  # no spy left on a client another test would reuse


def register(shop: Shop, customer: str, tracking: bool = True) -> None:
    shop.publish("CustomerRegistered", customer,
                 profile={"first_name": customer.title(), "email": f"{customer}@example.com"},
                 consent={"email": True, "tracking": tracking})


def send_thanks(shop: Shop, ses: SesSpy, tmp: Path, customer: str, *, tracking: bool = True,
                activities: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """The thank-you e-mail of an order, sent; SendEmail's parameters and answer."""
    shop.load([THANKS_BY_MAIL, *activities], segments=[EXAMPLES / "segments" / RESPONDERS], tmp=tmp)
    shop.aws.upload_catalog([], [], sorted((EXAMPLES / "templates").glob("*.json")))
    ses.install()
    register(shop, customer, tracking)
    shop.publish("OrderPlaced", customer, **ORDER)
    shop.deliver()
    [call] = ses.calls
    return call


def ses_event(call: dict[str, Any], detail_type: str, **what: Any) -> dict[str, Any]:
    """The PutEvents entry SES makes for an open or a click of the mail `call` sent (the record's
    shape as SES documents it: `mail.tags` holds each tag as a list of values)."""
    kind = {"Email Opened": "open", "Email Clicked": "click"}[detail_type]
    at = (NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    tags = {"ses:configuration-set": [call.get("ConfigurationSetName", "")],
            **{t["Name"]: [t["Value"]] for t in call.get("EmailTags", [])}}
    detail = {
        "eventType": kind.title(),
        "mail": {"timestamp": NOW.isoformat(), "messageId": call["MessageId"],
                 "source": call["FromEmailAddress"],
                 "destination": call["Destination"]["ToAddresses"], "tags": tags},
        kind: {"timestamp": at, "ipAddress": "192.0.2.1", "userAgent": "Mail", **what}}
    return {"Source": "aws.ses", "DetailType": detail_type, "Detail": json.dumps(detail)}


def publish_ses(shop: Shop, *entries: dict[str, Any]) -> str:
    """Put SES's events on the default bus, deliver them; what the functions printed."""
    if entries:
        result = shop.aws.client("events").put_events(Entries=list(entries))
        assert result["FailedEntryCount"] == 0, result
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        shop.aws.drain()
    return out.getvalue()


def behaviour(shop: Shop, customer: str, kind: str) -> list[Occurrence]:
    state = readback.customers(shop.aws)[f"customer:{customer}"]
    return [o for o in state.behaviour if o.kind == kind]


def test_an_email_sent_by_an_activity_carries_tags_naming_the_customer_not_the_address(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "amelie.b")
    tags = {t["Name"]: t["Value"] for t in call["EmailTags"]}
    assert tags == {"dialogue-subject": "customer_3Aamelie_2Eb", "dialogue-activity": "thanks",
                    "dialogue-template": "order-coupon"}
    assert "example" not in json.dumps(call["EmailTags"])  # no address, not even its domain


def test_an_open_of_an_activitys_email_is_recorded_once_as_emailopened_with_its_campaign(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "amelie")
    shop.aws.client("events").put_events(Entries=[ses_event(call, "Email Opened")])
    # The same event delivered twice (EventBridge and SQS deliver at least once).
    [message] = readback.take_queue(shop.aws, "SesEventsQueue")
    sqs, url = shop.aws.client("sqs"), shop.aws.s.queue_url("SesEventsQueue")
    sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    out = publish_ses(shop)

    [opened] = behaviour(shop, "amelie", "EmailOpened")
    assert opened.fields == {"campaign": "thanks", "template": "order-coupon"}
    assert opened.at == NOW + timedelta(minutes=5)  # when it was opened, as SES says
    assert '"EmailEngagement_recorded":[1.0]' in out.replace(" ", "")
    assert '"EmailEngagement_duplicate":[1.0]' in out.replace(" ", "")
    assert readback.take_queue(shop.aws, "MessagesDeadLetterQueue") == []


def test_a_click_is_recorded_as_emailclicked_with_the_link_and_starts_a_waiting_activity(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "frank", activities=(CLICKED_THANKS,))
    publish_ses(shop, ses_event(call, "Email Clicked",
                                link="https://shop.example/ski?utm_source=mail&c=customer:frank",
                                linkTags={"samplekey0": ["samplevalue0"]}))

    [clicked] = behaviour(shop, "frank", "EmailClicked")
    # The query is dropped: it may hold a token or what a template put there.
    assert clicked.fields == {"campaign": "thanks", "template": "order-coupon",
                              "link": "https://shop.example/ski"}
    assert readback.segment_members(shop.aws, "free-shipping-responders") == {"customer:frank"}


def test_a_rule_segment_on_emails_opened_sees_the_open(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "lea")
    register(shop, "noor")  # received nothing, opened nothing
    shop.deliver()
    publish_ses(shop, ses_event(call, "Email Opened"))
    segment = tmp_path / "opened-thanks.json"
    segment.write_text(json.dumps(OPENED))
    shop.aws.upload_catalog([], [segment])  # a new segment file is filled at once
    shop.deliver()

    assert readback.segment_members(shop.aws, "opened-thanks") == {"customer:lea"}


def test_an_open_of_a_mail_dialogue_did_not_tag_is_ignored_and_counted(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "sofia")
    before = readback.customers(shop.aws)["customer:sofia"]
    foreign = {**call, "EmailTags": []}  # another application's mail in the same account
    out = publish_ses(shop, ses_event(foreign, "Email Opened"))

    assert readback.customers(shop.aws)["customer:sofia"].version == before.version
    assert '"EmailEngagement_untagged":[1.0]' in out.replace(" ", "")
    assert readback.take_queue(shop.aws, "MessagesDeadLetterQueue") == []  # not an error


def test_without_tracking_consent_an_open_is_not_recorded(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "karim", tracking=False)
    out = publish_ses(shop, ses_event(call, "Email Opened"),
                      ses_event(call, "Email Clicked", link="https://shop.example/"))

    assert behaviour(shop, "karim", "EmailOpened") == []
    assert behaviour(shop, "karim", "EmailClicked") == []
    assert '"EmailEngagement_not_tracked":[' in out.replace(" ", "")


def test_a_customer_unknown_to_dialogue_is_not_created_by_an_open(
        shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "jonas")
    forged = {**call, "EmailTags": [{"Name": "dialogue-subject", "Value": "customer_3Aghost"},
                                       *call["EmailTags"][1:]]}
    out = publish_ses(shop, ses_event(forged, "Email Opened"))

    assert "customer:ghost" not in readback.customers(shop.aws)
    assert '"EmailEngagement_unknown_customer":[1.0]' in out.replace(" ", "")


def test_bounces_still_suppress_beside_opens(shop: Shop, tmp_path: Path, ses: SesSpy):
    call = send_thanks(shop, ses, tmp_path, "ines")
    bounce = {"eventType": "Bounce", "mail": {"messageId": call["MessageId"]},
              "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                         "bouncedRecipients": [{"emailAddress": "ines@example.com"}]}}
    publish_ses(shop, {"Source": "aws.ses", "DetailType": "Email Bounced",
                       "Detail": json.dumps(bounce)}, ses_event(call, "Email Opened"))

    table = shop.aws.client("dynamodb").scan(TableName=shop.aws.s.name("Table"))["Items"]
    assert len([i for i in table if i["pk"]["S"].startswith("SUPPRESSED#")]) == 1
    assert len(behaviour(shop, "ines", "EmailOpened")) == 1
