"""Delivery end to end on embedded AWS: events in, mail and SMS read back from moto's SES and
SNS, outcome events read back from the bus."""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from dialogue import bootstrap
from dialogue.local import readback
from dialogue.local.demo import SimulatedClock

from tests.e2e.conftest import EXAMPLES, NOW, ORDER, THANKS_BY_MAIL, Shop

THANKS_BY_SMS = {
    "id": "thanks-sms", "name": "Thanks by SMS", "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "sms"},
        {"id": "sms", "type": "send_message", "channel": "sms", "template": "weekend-sale",
         "send_immediately": True}]}


def register(shop: Shop, customer: str, *, email_consent: bool = True, sms: bool = False,
             **profile: Any) -> None:
    shop.publish("CustomerRegistered", customer,
                 profile={"first_name": customer.title(), "email": f"{customer}@example.com",
                          "country": "FR", **profile},
                 consent={"email": email_consent, "sms": sms, "tracking": True})


def load(shop: Shop, tmp: Path, *activities: dict[str, Any]) -> None:
    shop.load(list(activities), tmp=tmp)
    templates = sorted((EXAMPLES / "templates").glob("*.json"))
    shop.aws.upload_catalog([], [], templates)


def mails(shop: Shop) -> list[EmailMessage]:
    return [email.message_from_bytes(m.raw_data.encode(), policy=email.policy.default)
            for m in readback.sent_emails(shop.aws)]  # type: ignore[misc]


def body(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def test_an_order_sends_the_coupon_email_with_its_code_and_an_unsubscribe_link(
        shop: Shop, tmp_path: Path):
    load(shop, tmp_path, THANKS_BY_MAIL)
    register(shop, "frank")
    shop.publish("OrderPlaced", "frank", **ORDER)
    shop.deliver()

    [mail] = mails(shop)
    [coupon] = readback.coupons(shop.aws)
    assert mail["To"] == "frank@example.com"
    assert mail["Reply-To"] == "service@shop.example"
    assert "Frank" in mail["Subject"] or "Frank" in body(mail)
    assert coupon["code"] in body(mail) and coupon["code"] in body(mail, "html")
    assert mail["List-Unsubscribe"].startswith("<https://shop.example/unsubscribe?c=customer")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [job] = readback.message_jobs(shop.aws)
    assert job["status"] == "sent"
    outcomes = sorted(o["detail-type"] for o in readback.outcome_events(shop.aws))
    assert outcomes == ["CouponIssued", "MessageSent"]


def test_an_sms_goes_to_the_e164_number_with_the_rendered_text(shop: Shop, tmp_path: Path):
    load(shop, tmp_path, THANKS_BY_SMS)
    register(shop, "lea", sms=True, phone="06 12 34 56 78")
    shop.publish("OrderPlaced", "lea", **ORDER)
    shop.deliver()

    [(number, text)] = readback.sent_sms(shop.aws)
    assert number == "+33612345678"
    assert "https://shop.example" in text


def test_without_consent_nothing_is_sent_and_the_reason_is_recorded(shop: Shop, tmp_path: Path):
    load(shop, tmp_path, THANKS_BY_MAIL, THANKS_BY_SMS)
    register(shop, "karim", email_consent=False, sms=False, phone="+33612345678")
    shop.publish("OrderPlaced", "karim", **ORDER)
    shop.deliver()

    assert mails(shop) == [] and readback.sent_sms(shop.aws) == []
    reasons = sorted(j["reason"] for j in readback.message_jobs(shop.aws))
    assert reasons == ["no email marketing consent", "no sms marketing consent"]
    kinds = [o["detail-type"] for o in readback.outcome_events(shop.aws)]
    assert kinds.count("MessageSuppressed") == 2


def test_a_missing_value_holds_the_message_back_instead_of_sending_a_gap(
        shop: Shop, tmp_path: Path):
    gap = {**THANKS_BY_MAIL, "id": "gap", "elements": [
        {"id": "ordered", "type": "places_order", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "order-coupon",
         "send_immediately": True}]}  # no coupon before it: the template's coupon.code is missing
    load(shop, tmp_path, gap)
    register(shop, "sofia")
    shop.publish("OrderPlaced", "sofia", **ORDER)
    shop.deliver()

    assert mails(shop) == []
    [job] = readback.message_jobs(shop.aws)
    assert job["status"] == "held"
    assert "order-coupon" in job["reason"] and "coupon" in job["reason"]


def test_a_job_delivered_twice_by_the_queue_sends_one_email(shop: Shop, tmp_path: Path):
    load(shop, tmp_path, THANKS_BY_MAIL)
    register(shop, "jonas")
    shop.publish("OrderPlaced", "jonas", **ORDER)
    # Take the job off the queue before send_message sees it, and put it there twice.
    shop.aws.pump_pipes()
    for function in shop.aws.s.functions:
        if function.logical == "OnEventFunction":
            shop.aws._poll(function)
    shop.aws.relay_streams()
    [message] = readback.take_queue(shop.aws, "MessagesQueue")
    sqs, url = shop.aws.client("sqs"), shop.aws.s.queue_url("MessagesQueue")
    sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    shop.deliver()

    assert len(mails(shop)) == 1
    assert [j["status"] for j in readback.message_jobs(shop.aws)] == ["sent"]


@pytest.fixture
def flaky_providers(shop: Shop) -> Iterator[Callable[[], list[str]]]:
    """Once installed, 30 % of SES and SNS calls answer 429, 500 or 503 (no in-call retry:
    the queue's redelivery is what retries)."""
    os.environ["PROVIDER_ATTEMPTS"] = "1"
    rng, failures = random.Random(7), []

    def maybe_fail(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if rng.random() >= 0.3:
            return None
        status = rng.choice([429, 500, 503])
        failures.append(str(status))
        if event_name.startswith("before-send.sns"):  # query protocol: XML errors
            code = {429: "Throttling", 500: "InternalError", 503: "ServiceUnavailable"}[status]
            xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                   f"<Message>injected</Message></Error></ErrorResponse>")
            return AWSResponse(request.url, 400 if status == 429 else status, {},
                               _Raw(xml.encode()))
        code = {429: "TooManyRequestsException", 500: "InternalFailure",
                503: "ServiceUnavailable"}[status]  # rest-json: the code in a header
        return AWSResponse(request.url, status, {"x-amzn-ErrorType": code},
                           _Raw(b'{"message": "injected"}'))

    def install() -> list[str]:
        bootstrap.reset()
        service = bootstrap.delivery_service()
        service.mailer._ses.meta.events.register("before-send", maybe_fail)  # type: ignore[attr-defined]
        service.texter._sns.meta.events.register("before-send", maybe_fail)  # type: ignore[attr-defined]
        return failures

    yield install
    os.environ.pop("PROVIDER_ATTEMPTS")
    bootstrap.reset()


class _Raw:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def test_with_30_percent_of_provider_calls_failing_every_message_goes_once_or_is_dead_lettered(
        shop: Shop, tmp_path: Path, flaky_providers: Callable[[], list[str]]):
    load(shop, tmp_path, THANKS_BY_MAIL, THANKS_BY_SMS)
    failures = flaky_providers()
    customers = [f"c{n:02d}" for n in range(20)]
    for n, customer in enumerate(customers):
        register(shop, customer, sms=True, phone=f"+336123456{n:02d}")
        shop.publish("OrderPlaced", customer, **{**ORDER, "order_id": f"o-{n}"})
    shop.deliver()

    jobs = readback.message_jobs(shop.aws)
    dead = readback.take_queue(shop.aws, "MessagesDeadLetterQueue")
    sent_mail = [m["To"] for m in mails(shop)]
    sent_sms = [number for number, _ in readback.sent_sms(shop.aws)]
    assert len(failures) >= 8  # the failures really happened
    assert len(jobs) == 40
    assert sorted(sent_mail) == sorted(f"{c}@example.com" for c in customers
                                       if any(j["subject"] == f"customer:{c}" and
                                              j["channel"] == "email" and j["status"] == "sent"
                                              for j in jobs))
    assert len(sent_mail) == len(set(sent_mail))  # none twice
    assert len(sent_sms) == len(set(sent_sms))
    not_sent = [j for j in jobs if j["status"] != "sent"]
    assert len(not_sent) == len(dead)  # none lost: what did not go is dead-lettered
    assert len(sent_mail) + len(sent_sms) + len(dead) == 40
    kinds = [o["detail-type"] for o in readback.outcome_events(shop.aws)]
    assert kinds.count("MessageSent") == len(sent_mail) + len(sent_sms)


def test_a_permanent_bounce_suppresses_the_address_for_the_next_message(
        shop: Shop, tmp_path: Path):
    load(shop, tmp_path, THANKS_BY_MAIL)
    register(shop, "amelie")
    shop.aws.client("events").put_events(Entries=[{  # as SES publishes it, on the default bus
        "Source": "aws.ses", "DetailType": "Email Bounced", "Detail": json.dumps({
            "eventType": "Bounce", "mail": {"messageId": "m-1"},
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "bouncedRecipients": [{"emailAddress": "Amelie@Example.com"}]}})}])
    shop.publish("OrderPlaced", "amelie", **ORDER)
    shop.deliver()

    assert mails(shop) == []
    [job] = readback.message_jobs(shop.aws)
    assert job["status"] == "suppressed"
    assert "bounce" in job["reason"]
    table = shop.aws.client("dynamodb").scan(TableName=shop.aws.s.name("Table"))["Items"]
    suppressed = [i for i in table if i["pk"]["S"].startswith("SUPPRESSED#")]
    assert len(suppressed) == 1 and "amelie" not in json.dumps(suppressed).lower()


def test_a_message_for_the_daily_send_time_goes_out_once_when_its_time_comes(
        shop: Shop, tmp_path: Path):
    later = {**THANKS_BY_MAIL, "id": "later", "elements": [
        *THANKS_BY_MAIL["elements"][:2],
        {**THANKS_BY_MAIL["elements"][2], "send_immediately": False}]}
    load(shop, tmp_path, later)
    register(shop, "lea")
    shop.publish("OrderPlaced", "lea", **ORDER)  # 18:00 UTC: after today's 09:00 in Paris
    shop.deliver()
    [job] = readback.message_jobs(shop.aws)
    assert job["status"] == "scheduled" and mails(shop) == []

    shop.aws.run_schedules()  # still the evening: nothing is due
    assert mails(shop) == []

    bootstrap.use_clock(SimulatedClock(NOW.replace(hour=8, minute=5) + timedelta(days=1)))
    shop.aws.run_schedules()  # 09:05 in Paris the next morning
    shop.aws.run_schedules()  # a second run releases nothing twice
    [mail] = mails(shop)
    assert mail["To"] == "lea@example.com"
    assert [j["status"] for j in readback.message_jobs(shop.aws)] == ["sent"]
