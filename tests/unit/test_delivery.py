"""Delivery: what a customer receives (or why not), when, and that it is sent exactly once.

No AWS: `plan`, `render` and the SMS helpers are pure, the provider helpers are fed botocore
exceptions built by hand, and `DeliveryService` runs against in-memory fakes of its ports.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from dialogue.aws.providers import RateLimiter, classify
from dialogue.delivery.jobs import (
    OUTCOME,
    Abandoned,
    Busy,
    Claim,
    Claimed,
    JobStatus,
    Settled,
)
from dialogue.delivery.plan import (
    DeliverySettings,
    Email,
    Hold,
    Schedule,
    Sms,
    Suppress,
    address_of,
    plan,
    release_time,
    suppression_key,
)
from dialogue.delivery.providers_port import ProviderRejected, ProviderUnavailable
from dialogue.delivery.render import CONTEXT_NAMES, RenderError, render, template_problems
from dialogue.delivery.service import Delivered, DeliveryService
from dialogue.delivery.sms import InvalidNumber, e164, parts
from dialogue.engine.catalog import Catalog
from dialogue.model.customer import CartState, ConsentState, CustomerState, LineRecord
from dialogue.model.effects import MessageQueued
from dialogue.model.events import Profile
from dialogue.model.template import EmailTemplate, MessageTemplate, SmsTemplate
from pydantic import TypeAdapter

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)  # a Sunday afternoon, 14:00 in Paris
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "templates"

SETTINGS = DeliverySettings(
    sender="Alpine & Court <news@shop.example>",
    shop_name="Alpine & Court",
    shop_url="https://shop.example",
    unsubscribe_url="https://shop.example/unsubscribe",
    unsubscribe_secret=b"unit-test-secret",
    send_time=time(9, 0),
    time_zone="Europe/Paris",
)

EMAIL_ONLY = ConsentState(email=True, sms=False)
SMS_ONLY = ConsentState(email=False, sms=True)
NO_CONSENT = ConsentState(email=False, sms=False)

COUPON = {"code": "K7QF2M9XRT4H", "promotion": "CART-20",
          "expires_at": "2027-01-08T07:00:00+00:00"}


# --- builders ----------------------------------------------------------------------------------
def customer(*, subject: str = "customer:c1", consent: ConsentState = EMAIL_ONLY,
             cart: CartState | None = None, **profile: Any) -> CustomerState:
    """Frank, with an e-mail address and e-mail consent, unless told otherwise."""
    profile.setdefault("email", "frank@example.com")
    profile.setdefault("first_name", "Frank")
    profile = {k: v for k, v in profile.items() if v is not None}
    return CustomerState(subject=subject, profile=Profile(**profile), consent=consent, cart=cart)


def job(channel: str = "email", template: str = "welcome", *, subject: str = "customer:c1",
        send_immediately: bool = True, at: datetime = NOW, reply_to: str | None = None,
        entry: int = 1, **context: Any) -> MessageQueued:
    """A message job as the engine queues it: the event's detail, the run's coupons, the
    activity."""
    ctx: dict[str, Any] = {
        "event": {"event_id": "evt-1", "customer_id": "c1", "occurred_at": at.isoformat()},
        "coupons": {},
        "activity": {"id": "act", "name": "Test activity"},
    }
    ctx.update(context)
    return MessageQueued(activity_id="act", element_id="mail", subject=subject, entry=entry,
                         at=at, channel=channel, template=template, reply_to=reply_to,
                         send_immediately=send_immediately, event_id="evt-1", context=ctx)


def mail_template(ident: str = "welcome", *,
                  subject: str = "Welcome to {{ shop.name }}, {{ customer.first_name }}!",
                  text: str = "Hi {{ customer.first_name }},\n\n"
                              "Unsubscribe: {{ unsubscribe_url }}\n",
                  html: str | None = "<p>Hi {{ customer.first_name }},</p>"
                                     "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
                  ) -> EmailTemplate:
    return EmailTemplate(id=ident, channel="email", subject=subject, text=text, html=html)


def sms_template(ident: str = "hello",
                 text: str = "{{ shop.name }}: hi {{ customer.first_name | default('there') }}!",
                 ) -> SmsTemplate:
    return SmsTemplate(id=ident, channel="sms", text=text)


def frank_sms() -> CustomerState:
    return customer(consent=SMS_ONLY, phone="06 12 34 56 78", country="FR")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def unsubscribe_link(email: Email) -> str:
    header = email.headers["List-Unsubscribe"]
    assert header.startswith("<") and header.endswith(">")
    return header[1:-1]


# --- plan: e-mail ------------------------------------------------------------------------------
class TestEmail:
    def test_a_consenting_customer_gets_the_rendered_email_from_the_shop(self):
        decision = plan(job(reply_to="service@shop.example"), customer(), False,
                        mail_template(), NOW, SETTINGS)

        assert isinstance(decision, Email)
        assert decision.to == "frank@example.com"
        assert decision.sender == "Alpine & Court <news@shop.example>"
        assert decision.reply_to == "service@shop.example"
        assert decision.subject == "Welcome to Alpine & Court, Frank!"
        assert decision.text.startswith("Hi Frank,\n")
        assert decision.html is not None and decision.html.startswith("<p>Hi Frank,</p>")

    def test_every_email_carries_a_one_click_unsubscribe(self):
        decision = plan(job(), customer(), False, mail_template(), NOW, SETTINGS)

        assert isinstance(decision, Email)
        link = unsubscribe_link(decision)
        assert link.startswith("https://shop.example/unsubscribe?")
        assert decision.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # the same link is the one the template shows in the text and the HTML
        assert link in decision.text
        assert decision.html is not None and link.replace("&", "&amp;") in decision.html

    def test_a_job_without_reply_to_has_none(self):
        decision = plan(job(), customer(), False, mail_template(), NOW, SETTINGS)
        assert isinstance(decision, Email) and decision.reply_to is None

    def test_the_unsubscribe_link_is_stable_for_one_customer_and_differs_between_customers(self):
        frank = customer()
        anna = customer(subject="customer:c2", email="anna@example.com", first_name="Anna")

        first = plan(job(), frank, False, mail_template(), NOW, SETTINGS)
        later = plan(job(template="other", entry=2, at=NOW + timedelta(days=30)), frank, False,
                     mail_template("other"), NOW + timedelta(days=30), SETTINGS)
        annas = plan(job(subject="customer:c2"), anna, False, mail_template(), NOW, SETTINGS)

        assert isinstance(first, Email) and isinstance(later, Email) and isinstance(annas, Email)
        assert unsubscribe_link(first) == unsubscribe_link(later)
        franks_query = parse_qs(urlsplit(unsubscribe_link(first)).query)
        annas_query = parse_qs(urlsplit(unsubscribe_link(annas)).query)
        assert franks_query["c"] == ["customer:c1"] and annas_query["c"] == ["customer:c2"]
        assert franks_query["t"] != annas_query["t"]

    def test_the_unsubscribe_token_cannot_be_made_without_the_shops_secret(self):
        other_secret = DeliverySettings(**{**SETTINGS.__dict__, "unsubscribe_secret": b"guess"})
        ours = plan(job(), customer(), False, mail_template(), NOW, SETTINGS)
        theirs = plan(job(), customer(), False, mail_template(), NOW, other_secret)

        assert isinstance(ours, Email) and isinstance(theirs, Email)
        assert (parse_qs(urlsplit(unsubscribe_link(ours)).query)["t"]
                != parse_qs(urlsplit(unsubscribe_link(theirs)).query)["t"])

    def test_the_address_is_normalised(self):
        decision = plan(job(), customer(email="  Frank@Example.COM "), False, mail_template(),
                        NOW, SETTINGS)
        assert isinstance(decision, Email) and decision.to == "frank@example.com"

    def test_the_unsubscribe_link_keeps_the_shops_own_query_parameters(self):
        settings = DeliverySettings(**{**SETTINGS.__dict__,
                                       "unsubscribe_url": "https://shop.example/u?lang=fr"})
        decision = plan(job(), customer(), False, mail_template(), NOW, settings)

        assert isinstance(decision, Email)
        query = parse_qs(urlsplit(unsubscribe_link(decision)).query)
        assert query["lang"] == ["fr"]
        assert query["c"] == ["customer:c1"]


class TestNothingIsSentWithoutConsentAndAnAddress:
    def test_no_email_consent_suppresses_naming_the_channel(self):
        decision = plan(job(), customer(consent=SMS_ONLY), False, mail_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress) and "email" in decision.reason

    def test_no_sms_consent_suppresses_naming_the_channel(self):
        state = customer(consent=EMAIL_ONLY, phone="+33612345678")
        decision = plan(job("sms", "hello"), state, False, sms_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress) and "sms" in decision.reason

    def test_no_email_address_suppresses(self):
        decision = plan(job(), customer(email=None), False, mail_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress) and "e-mail address" in decision.reason

    def test_a_blank_email_address_suppresses(self):
        decision = plan(job(), customer(email="   "), False, mail_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress)

    def test_a_suppressed_address_is_not_written_to(self):
        decision = plan(job(), customer(), True, mail_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress) and "suppressed" in decision.reason

    def test_an_unknown_customer_is_not_written_to(self):
        decision = plan(job(), None, False, mail_template(), NOW, SETTINGS)
        assert decision == Suppress("unknown customer")

    def test_consent_for_one_channel_does_not_open_the_other(self):
        state = customer(consent=SMS_ONLY, phone="+33612345678")
        assert isinstance(plan(job(), state, False, mail_template(), NOW, SETTINGS), Suppress)
        assert isinstance(plan(job("sms", "hello"), state, False, sms_template(), NOW, SETTINGS),
                          Sms)

    def test_the_address_and_its_suppression_key(self):
        assert address_of(job(), customer(email=" Frank@Example.com")) == "frank@example.com"
        assert address_of(job(), None) is None
        assert address_of(job("sms"), frank_sms()) == "+33612345678"
        assert address_of(job("sms"), customer(phone="12", country="FR")) is None
        # kept hashed, the same for every spelling of one address
        key = suppression_key("frank@example.com")
        assert key == suppression_key("  FRANK@example.com ")
        assert "frank" not in key and len(key) == 64


class TestHeldBack:
    def test_a_missing_template_holds_the_message_naming_it(self):
        decision = plan(job(template="welcome"), customer(), False, None, NOW, SETTINGS)
        assert isinstance(decision, Hold) and "'welcome'" in decision.reason

    def test_a_template_of_the_other_channel_holds_the_message(self):
        decision = plan(job("email", "hello"), customer(consent=ConsentState(email=True, sms=True)),
                        False, sms_template("hello"), NOW, SETTINGS)
        assert isinstance(decision, Hold)
        assert "'hello'" in decision.reason and "sms" in decision.reason

    def test_an_email_template_for_an_sms_job_holds_it(self):
        decision = plan(job("sms", "welcome"), frank_sms(), False, mail_template(), NOW, SETTINGS)
        assert isinstance(decision, Hold) and "email" in decision.reason

    @pytest.mark.parametrize("first_name", [None, ""], ids=["absent", "empty"])
    def test_a_missing_first_name_holds_the_message_instead_of_leaving_a_gap(self, first_name):
        decision = plan(job(), customer(first_name=first_name), False, mail_template(), NOW,
                        SETTINGS)

        assert isinstance(decision, Hold)
        assert "'welcome'" in decision.reason
        assert "first_name" in decision.reason

    def test_a_gap_in_the_html_part_alone_holds_the_message(self):
        template = mail_template(subject="Hello", text="Hello\n",
                                 html="<p>{{ customer.last_name }}</p>")
        decision = plan(job(), customer(), False, template, NOW, SETTINGS)
        assert isinstance(decision, Hold) and "last_name" in decision.reason

    def test_a_subject_that_renders_empty_holds_the_message(self):
        template = mail_template(subject="{{ customer.last_name | default('') }}")
        decision = plan(job(), customer(), False, template, NOW, SETTINGS)
        assert isinstance(decision, Hold) and "subject is empty" in decision.reason

    def test_a_missing_coupon_holds_a_coupon_email(self):
        template = mail_template(subject="Your code", text="{{ coupon.code }}", html=None)
        decision = plan(job(), customer(), False, template, NOW, SETTINGS)
        assert isinstance(decision, Hold) and "coupon" in decision.reason

    def test_an_sms_template_cannot_use_the_unsubscribe_link(self):
        template = sms_template(text="Stop: {{ unsubscribe_url }}")
        decision = plan(job("sms", "hello"), frank_sms(), False, template, NOW, SETTINGS)
        assert isinstance(decision, Hold) and "unsubscribe_url" in decision.reason

    def test_a_line_break_in_a_first_name_never_reaches_the_subject(self):
        state = customer(first_name="Frank\nBcc: everyone@example.com")
        decision = plan(job(), state, False, mail_template(), NOW, SETTINGS)
        assert not (isinstance(decision, Email) and ("\n" in decision.subject
                                                    or "\r" in decision.subject))


class TestPersonalisation:
    def test_default_fills_a_missing_first_name(self):
        template = mail_template(subject="Hi {{ customer.first_name | default('there') }}",
                                 text="Hi {{ customer.first_name | default(\"there\") }},\n",
                                 html=None)
        decision = plan(job(), customer(first_name=None), False, template, NOW, SETTINGS)
        assert isinstance(decision, Email)
        assert decision.subject == "Hi there" and decision.text == "Hi there,\n"
        assert decision.html is None

    def test_the_html_part_escapes_values_but_the_text_part_does_not(self):
        decision = plan(job(), customer(first_name="<b>Frank</b> & co"), False, mail_template(),
                        NOW, SETTINGS)

        assert isinstance(decision, Email) and decision.html is not None
        assert "&lt;b&gt;Frank&lt;/b&gt; &amp; co" in decision.html
        assert "<b>Frank</b>" not in decision.html
        assert decision.text.startswith("Hi <b>Frank</b> & co,")
        assert decision.subject == "Welcome to Alpine & Court, <b>Frank</b> & co!"

    def test_the_run_coupon_the_event_the_cart_and_the_shop_are_available(self):
        cart = CartState(cart_id="cart-1", updated_at=NOW, lines=[
            LineRecord(product_id="sku-skis", quantity=1, value=Decimal("399.00")),
            LineRecord(product_id="sku-poles", quantity=2, value=Decimal("59.80")),
        ])
        template = mail_template(
            subject="{{ shop.name }}: your code {{ coupon.code }}",
            text=("order {{ event.order_id }}\n"
                  "code {{ coupon.code }} ({{ coupons['CART-20'].promotion }})"
                  " until {{ coupon.expires_at[:10] }}\n"
                  "cart {{ cart.lines | length }}: {{ cart.lines[0].product_id }}\n"
                  "{{ shop.name }} {{ shop.url }} {{ activity.name }}\n"),
            html="<p>{{ coupon.code }}</p>")
        queued = job(event={"event_id": "evt-1", "order_id": "ord-1002", "total": "94.32"},
                     coupons={"CART-20": COUPON}, coupon=COUPON)

        decision = plan(queued, customer(cart=cart), False, template, NOW, SETTINGS)

        assert isinstance(decision, Email), decision
        assert decision.subject == "Alpine & Court: your code K7QF2M9XRT4H"
        assert decision.text == ("order ord-1002\n"
                                 "code K7QF2M9XRT4H (CART-20) until 2027-01-08\n"
                                 "cart 2: sku-skis\n"
                                 "Alpine & Court https://shop.example Test activity\n")
        assert decision.html == "<p>K7QF2M9XRT4H</p>"

    def test_an_empty_cart_is_absent(self):
        empty = CartState(cart_id="cart-1", updated_at=NOW, lines=[])
        template = mail_template(subject="{% if cart is defined %}cart{% else %}no cart{% endif %}")
        decision = plan(job(), customer(cart=empty), False, template, NOW, SETTINGS)
        assert isinstance(decision, Email) and decision.subject == "no cart"

    def test_the_customers_own_fields_are_available(self):
        template = mail_template(subject="{{ customer.city | upper }} "
                                         "{{ customer.attributes.loyalty_tier }}")
        state = customer(city="Lyon", attributes={"loyalty_tier": "gold"})
        decision = plan(job(), state, False, template, NOW, SETTINGS)
        assert isinstance(decision, Email) and decision.subject == "LYON gold"


class TestExampleTemplates:
    TEMPLATES = sorted(EXAMPLES.glob("*.json"))

    @staticmethod
    def load(path: Path) -> EmailTemplate | SmsTemplate:
        return TypeAdapter(MessageTemplate).validate_python(json.loads(path.read_text()))

    def test_there_are_example_templates(self):
        assert len(self.TEMPLATES) >= 10

    @pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
    def test_an_example_template_has_no_problems(self, path):
        assert template_problems(self.load(path)) == []

    @pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
    def test_an_example_template_goes_out_to_a_customer_with_only_an_address(self, path):
        template = self.load(path)
        state = CustomerState(subject="customer:c9",
                              profile=Profile(email="c9@example.com", phone="+33612345678"),
                              consent=ConsentState(email=True, sms=True))
        queued = job(template.channel, template.id, subject="customer:c9",
                     coupons={"CART-20": COUPON}, coupon=COUPON)

        decision = plan(queued, state, False, template, NOW, SETTINGS)

        assert isinstance(decision, Email | Sms), decision
        rendered = decision.text + (decision.html or "" if isinstance(decision, Email) else "")
        assert "{{" not in rendered and "{%" not in rendered


# --- plan: SMS ---------------------------------------------------------------------------------
class TestSms:
    def test_a_national_number_is_read_in_the_customers_country(self):
        decision = plan(job("sms", "hello"), frank_sms(), False, sms_template(), NOW, SETTINGS)
        assert decision == Sms(to="+33612345678", text="Alpine & Court: hi Frank!", parts=1)

    def test_an_invalid_number_suppresses(self):
        state = customer(consent=SMS_ONLY, phone="06 12", country="FR")
        decision = plan(job("sms", "hello"), state, False, sms_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress) and "phone number" in decision.reason

    def test_a_national_number_without_a_country_suppresses(self):
        state = customer(consent=SMS_ONLY, phone="06 12 34 56 78")
        decision = plan(job("sms", "hello"), state, False, sms_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress)

    def test_no_phone_suppresses(self):
        state = customer(consent=SMS_ONLY)
        decision = plan(job("sms", "hello"), state, False, sms_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress) and "phone number" in decision.reason

    def test_an_sms_that_renders_empty_is_held(self):
        template = sms_template(text="{{ customer.last_name | default('') }}")
        decision = plan(job("sms", "hello"), frank_sms(), False, template, NOW, SETTINGS)
        assert isinstance(decision, Hold)

    def test_a_suppressed_number_is_not_texted(self):
        decision = plan(job("sms", "hello"), frank_sms(), True, sms_template(), NOW, SETTINGS)
        assert isinstance(decision, Suppress)

    def test_the_parts_of_the_rendered_text_are_counted(self):
        template = sms_template(text="{{ shop.name }} " + "x" * 150)  # 15 + 150 = 165 chars
        decision = plan(job("sms", "hello"), frank_sms(), False, template, NOW, SETTINGS)
        assert isinstance(decision, Sms) and decision.parts == 2

    def test_a_name_with_a_non_gsm_letter_makes_it_a_ucs2_text(self):
        state = customer(consent=SMS_ONLY, phone="+33612345678", first_name="Zoë")
        template = sms_template(text="Happy birthday, {{ customer.first_name }}! " + "x" * 40)
        decision = plan(job("sms", "hello"), state, False, template, NOW, SETTINGS)
        assert isinstance(decision, Sms) and len(decision.text) == 61 and decision.parts == 1
        longer = sms_template(text="Happy birthday, {{ customer.first_name }}! " + "x" * 50)
        decision = plan(job("sms", "hello"), state, False, longer, NOW, SETTINGS)
        assert isinstance(decision, Sms) and len(decision.text) == 71 and decision.parts == 2

    @pytest.mark.parametrize(("number", "country", "expected"), [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("06 12 34 56 78", "fr", "+33612345678"),
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("+44 7911 123456", "FR", "+447911123456"),
        ("0151 1234 5678", "DE", "+4915112345678"),
    ])
    def test_e164(self, number, country, expected):
        assert e164(number, country) == expected

    @pytest.mark.parametrize(("number", "country"), [
        ("06 12", "FR"), ("not a number", "FR"), ("06 12 34 56 78", None), ("", "FR"),
    ])
    def test_not_a_number(self, number, country):
        with pytest.raises(InvalidNumber):
            e164(number, country)


class TestSmsParts:
    @pytest.mark.parametrize(("text", "expected"), [
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("é" * 160, 1),  # é is GSM-7
        ("ë" * 70, 1),  # ë is not: UCS-2
        ("ë" * 71, 2),
        ("ë" * 134, 2),
        ("ë" * 135, 3),
        ("a" * 69 + "ç", 1),  # one non-GSM letter makes the whole text UCS-2
        ("a" * 70 + "ç", 2),
        ("’" + "a" * 70, 2),  # a curly apostrophe too
        ("€" * 80, 1),  # extended characters count double
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),
        ("a" * 158 + "{", 1),
        ("😀" * 35, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, 2),
    ], ids=lambda v: v if isinstance(v, int) else f"{v[:2]}..x{len(v)}")
    def test_parts(self, text, expected):
        assert parts(text) == expected


# --- send time ---------------------------------------------------------------------------------
class TestSendTime:
    def test_a_job_queued_before_the_send_time_waits_for_it(self):
        queued = job(send_immediately=False, at=paris(2025, 6, 16, 8, 30))
        decision = plan(queued, customer(), False, mail_template(),
                        paris(2025, 6, 16, 8, 31).astimezone(UTC), SETTINGS)
        assert decision == Schedule(paris(2025, 6, 16, 9, 0))
        assert decision.release_at.astimezone(UTC) == datetime(2025, 6, 16, 7, 0, tzinfo=UTC)

    def test_a_job_queued_before_the_send_time_goes_out_after_it(self):
        queued = job(send_immediately=False, at=paris(2025, 6, 16, 8, 30))
        decision = plan(queued, customer(), False, mail_template(),
                        paris(2025, 6, 16, 9, 1).astimezone(UTC), SETTINGS)
        assert isinstance(decision, Email)

    def test_a_job_queued_after_the_send_time_waits_for_the_next_day(self):
        queued = job(send_immediately=False, at=paris(2025, 6, 16, 10, 0))
        decision = plan(queued, customer(), False, mail_template(),
                        paris(2025, 6, 16, 10, 1), SETTINGS)
        assert decision == Schedule(paris(2025, 6, 17, 9, 0))

    def test_a_job_queued_at_the_send_time_goes_at_once(self):
        queued = job(send_immediately=False, at=paris(2025, 6, 16, 9, 0))
        decision = plan(queued, customer(), False, mail_template(), paris(2025, 6, 16, 9, 0),
                        SETTINGS)
        assert isinstance(decision, Email)

    def test_send_immediately_ignores_the_send_time(self):
        queued = job(send_immediately=True, at=paris(2025, 6, 16, 3, 0))
        decision = plan(queued, customer(), False, mail_template(), paris(2025, 6, 16, 3, 0),
                        SETTINGS)
        assert isinstance(decision, Email)

    def test_the_nightly_check_queues_for_the_morning(self):
        at = paris(2025, 6, 16, 2, 0)
        assert release_time(at, SETTINGS) == paris(2025, 6, 16, 9, 0)

    def test_the_release_is_at_nine_local_time_after_clocks_go_forward(self):
        release = release_time(paris(2026, 3, 28, 22, 0), SETTINGS)

        assert release.isoformat() == "2026-03-29T09:00:00+02:00"
        assert release.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
        queued = job(send_immediately=False, at=paris(2026, 3, 28, 22, 0))
        assert isinstance(plan(queued, customer(), False, mail_template(),
                               datetime(2026, 3, 29, 6, 59, tzinfo=UTC), SETTINGS), Schedule)
        assert isinstance(plan(queued, customer(), False, mail_template(),
                               datetime(2026, 3, 29, 7, 30, tzinfo=UTC), SETTINGS), Email)

    def test_the_release_is_at_nine_local_time_after_clocks_go_back(self):
        release = release_time(paris(2026, 10, 24, 22, 0), SETTINGS)
        assert release.isoformat() == "2026-10-25T09:00:00+01:00"
        assert release.astimezone(UTC) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)

    def test_a_job_queued_in_utc_is_released_in_the_shops_zone(self):
        # 23:30 UTC on the 15th is 01:30 on the 16th in Paris: the release is that morning
        release = release_time(datetime(2025, 6, 15, 23, 30, tzinfo=UTC), SETTINGS)
        assert release == paris(2025, 6, 16, 9, 0)

    def test_another_send_time(self):
        settings = DeliverySettings(**{**SETTINGS.__dict__, "send_time": time(18, 30)})
        assert release_time(paris(2025, 6, 16, 18, 0), settings) == paris(2025, 6, 16, 18, 30)
        assert release_time(paris(2025, 6, 16, 19, 0), settings) == paris(2025, 6, 17, 18, 30)


# --- render and template_problems --------------------------------------------------------------
class TestRender:
    def test_render_reports_the_template_and_the_missing_value(self):
        with pytest.raises(RenderError, match=r"'welcome'.*first_name"):
            render(mail_template(), {"customer": {}, "shop": {"name": "S"}})

    def test_none_and_empty_values_count_as_missing(self):
        context = {"customer": {"first_name": None, "last_name": ""}, "shop": {"name": "S"},
                   "unsubscribe_url": "u"}
        with pytest.raises(RenderError):
            render(mail_template(), context)
        template = mail_template(subject="{{ customer.last_name | default('x') }}", html=None,
                                 text="{{ customer.first_name | default('there') }}")
        assert render(template, context).text == "there"

    def test_the_sandbox_refuses_to_reach_python_internals(self):
        template = mail_template(subject="{{ shop.name.__class__.__mro__ }}", html=None)
        with pytest.raises(RenderError):
            render(template, {"shop": {"name": "S"}, "customer": {"first_name": "F"},
                              "unsubscribe_url": "u"})


class TestTemplateProblems:
    def test_a_good_template_has_none(self):
        assert template_problems(mail_template()) == []
        assert template_problems(sms_template()) == []

    def test_an_unknown_name_is_reported_with_its_field(self):
        template = mail_template(subject="Hi {{ customr.first_name }}",
                                 html="<p>{{ first_name }}</p>")
        problems = template_problems(template)

        assert [field for field, _ in problems] == ["subject", "html"]
        assert "'customr'" in problems[0][1] and "'first_name'" in problems[1][1]
        assert "customer" in problems[0][1]  # the reason lists the names that exist

    def test_a_syntax_error_is_reported_with_its_field(self):
        problems = template_problems(mail_template(text="Hi {% if customer.first_name %}!"))
        assert len(problems) == 1
        field, reason = problems[0]
        assert field == "text" and reason.startswith("template syntax:")

    def test_an_sms_template_problem_is_in_its_text(self):
        problems = template_problems(sms_template(text="{{ coupn.code }} {{ shop.name"))
        assert [field for field, _ in problems] == ["text"]

    def test_names_set_in_the_template_are_known(self):
        template = sms_template(text="{% set n = customer.first_name | default('you') %}Hi {{ n }}")
        assert template_problems(template) == []

    def test_the_known_names(self):
        known = {"customer", "event", "coupon", "coupons", "activity", "shop", "cart",
                 "run", "unsubscribe_url"}
        assert known == CONTEXT_NAMES


# --- providers: errors and rate ----------------------------------------------------------------
def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail")


class TestClassify:
    @pytest.mark.parametrize(("code", "status"), [
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("TooManyRequestsException", 429),
        ("LimitExceededException", 400),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
        ("", 500),
        ("SomethingNew", 502),
        ("", 429),
        ("ThrottledException", 429),
    ])
    def test_retry_later(self, code, status):
        assert isinstance(classify(client_error(code, status)), ProviderUnavailable)

    @pytest.mark.parametrize(("code", "status"), [
        ("MessageRejected", 400),
        ("InvalidParameter", 400),
        ("InvalidParameterValue", 400),
        ("MailFromDomainNotVerifiedException", 400),
        ("", 403),
    ])
    def test_will_never_work(self, code, status):
        error = classify(client_error(code, status))
        assert isinstance(error, ProviderRejected)
        assert str(error) == (code or str(status))

    def test_a_provider_that_cannot_be_reached_is_retried(self):
        assert isinstance(classify(EndpointConnectionError(endpoint_url="https://e")),
                          ProviderUnavailable)

    def test_a_read_timeout_is_not_retried_as_the_provider_may_have_the_message(self):
        # left unsorted: the service records "outcome unknown" and dead-letters it, never twice
        error = ReadTimeoutError(endpoint_url="https://e")
        assert classify(error) is error

    def test_a_connection_closed_mid_request_is_left_unsorted(self):
        # the service then treats it as "outcome unknown": failed and dead-lettered, not retried
        error = ConnectionClosedError(endpoint_url="https://e")
        assert classify(error) is error

    def test_other_errors_are_left_as_they_are(self):
        error = ValueError("a bug")
        assert classify(error) is error


@dataclass
class FakeTime:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TestRateLimiter:
    def test_calls_are_spaced_to_the_rate(self):
        t = FakeTime()
        limiter = RateLimiter(2, clock=t.clock, sleep=t.sleep)
        calls = []
        for _ in range(5):
            limiter.wait()
            calls.append(t.now)

        assert calls == [1000.0, 1000.5, 1001.0, 1001.5, 1002.0]
        assert t.sleeps == [0.5, 0.5, 0.5, 0.5]

    def test_a_slow_caller_does_not_wait(self):
        t = FakeTime()
        limiter = RateLimiter(2, clock=t.clock, sleep=t.sleep)
        limiter.wait()
        t.now += 0.7
        limiter.wait()
        t.now += 0.2
        limiter.wait()
        assert t.sleeps == [pytest.approx(0.3)]

    def test_idle_time_is_not_saved_up_for_a_burst(self):
        t = FakeTime()
        limiter = RateLimiter(2, clock=t.clock, sleep=t.sleep)
        limiter.wait()
        t.now += 10
        limiter.wait()
        limiter.wait()
        assert t.sleeps == [0.5]

    def test_a_clock_starting_at_zero(self):
        t = FakeTime(now=0.0)
        limiter = RateLimiter(4, clock=t.clock, sleep=t.sleep)
        for _ in range(3):
            limiter.wait()
        assert t.sleeps == [0.25, 0.25]


# --- DeliveryService with fakes ----------------------------------------------------------------
class FakeJobs:
    """Job rows by key; every row starts `queued`, moves are conditional like DynamoJobs'."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.reason: dict[str, str] = {}
        self.attempt: dict[str, str] = {}
        self.lease: dict[str, datetime] = {}
        self.provider_id: dict[str, str] = {}
        self.reported_as: dict[str, str] = {}

    def get(self, key: str) -> str:
        return self.status.get(key, "queued")

    def claim(self, job_key: str, attempt: str, now: datetime, lease_until: datetime,
              provider: str) -> Claim:
        status = self.get(job_key)
        if status in ("queued", "scheduled"):
            self.status[job_key], self.attempt[job_key] = "sending", attempt
            self.lease[job_key] = lease_until
            return Claimed(attempt)
        if status != "sending":
            return Settled(status)
        if self.lease[job_key] > now:
            return Busy(self.lease[job_key])
        return Abandoned(self.attempt[job_key])

    def mark_sent(self, job_key: str, attempt: str, now: datetime, provider_id: str) -> bool:
        if self.get(job_key) != "sending" or self.attempt[job_key] != attempt:
            return False
        self.status[job_key], self.provider_id[job_key] = "sent", provider_id
        return True

    def release(self, job_key: str, attempt: str) -> None:
        if self.get(job_key) == "sending" and self.attempt[job_key] == attempt:
            self.status[job_key] = "queued"

    def settle(self, job_key: str, attempt: str, status: JobStatus, now: datetime,
               reason: str) -> bool:
        if self.get(job_key) != "sending" or self.attempt[job_key] != attempt:
            return False
        self.status[job_key], self.reason[job_key] = status.value, reason
        return True

    def reported(self, job_key: str, status: JobStatus, now: datetime) -> bool:
        self.reported_as[job_key] = OUTCOME[status]
        return True

    def schedule(self, job_key: str, at: Any, release_at: Any, reason: Any = None) -> bool:
        if self.get(job_key) not in ("queued", "scheduled"):
            return False
        self.status[job_key] = "scheduled"
        self.reason[job_key] = reason or f"release at {release_at.isoformat()}"
        return True

    def finish(self, job_key: str, status: JobStatus, at: Any, reason: str) -> bool:
        if self.get(job_key) not in ("queued", "scheduled"):
            return False
        self.status[job_key], self.reason[job_key] = status.value, reason
        return True

    def unsettled(self, now: datetime) -> list[Any]:
        return []


class FakeRecipients:
    def __init__(self, states: list[CustomerState], suppressed: list[str]) -> None:
        self.states = {s.subject: s for s in states}
        self.hashes = {suppression_key(a) for a in suppressed}

    def state(self, subject: str) -> CustomerState | None:
        return self.states.get(subject)

    def suppressed(self, address_hash: str) -> bool:
        return address_hash in self.hashes


class FakeCatalogs:
    def __init__(self, templates: list[EmailTemplate | SmsTemplate]) -> None:
        self.templates = templates

    def catalog(self) -> Catalog:
        return Catalog(templates=self.templates)


class FakeSender:
    """Records what it sent; raises the queued failures first, one per call."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.failures: list[Exception] = []
        self.calls = 0

    def send(self, message: Any) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return f"provider-id-{len(self.sent)}"


class FakeOutcomes:
    """MessageSent events put on the bus, by job key."""

    def __init__(self) -> None:
        self.published: list[str] = []

    def sent(self, job: Any, provider: str, at: Any) -> None:
        self.published.append(job.key)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.rejected: list[tuple[str, str | None, list[str]]] = []

    def reject(self, body: str, event_id: str | None, reasons: list[str]) -> None:
        self.rejected.append((body, event_id, reasons))


@dataclass
class FixedClock:
    at: datetime = NOW

    def now(self) -> datetime:
        return self.at


@dataclass
class World:
    service: DeliveryService
    jobs: FakeJobs
    mailer: FakeSender
    texter: FakeSender
    dead_letters: FakeDeadLetters
    outcomes: FakeOutcomes
    clock: FixedClock
    counts: Counter[str]
    logs: list[tuple[Any, ...]]


def world(*states: CustomerState, templates: tuple[EmailTemplate | SmsTemplate, ...] = (),
          suppressed: tuple[str, ...] = (), now: datetime = NOW) -> World:
    jobs, mailer, texter = FakeJobs(), FakeSender(), FakeSender()
    dead, clock, counts = FakeDeadLetters(), FixedClock(now), Counter[str]()
    outcomes = FakeOutcomes()
    logs: list[tuple[Any, ...]] = []

    def count(name: str, n: int) -> None:
        counts[name] += n

    def log(*args: Any, **kwargs: Any) -> None:
        logs.append(args)

    service = DeliveryService(
        jobs=jobs, recipients=FakeRecipients(list(states), list(suppressed)),
        catalogs=FakeCatalogs(list(templates or (mail_template(), sms_template()))),
        mailer=mailer, texter=texter, dead_letters=dead, outcomes=outcomes, settings=SETTINGS,
        clock=clock, count=count, log=log)
    return World(service, jobs, mailer, texter, dead, outcomes, clock, counts, logs)


class TestDeliveryService:
    def test_an_email_is_sent_once_even_when_the_job_comes_twice(self):
        w = world(customer())
        queued = job()

        assert w.service.handle(queued.model_dump_json()) == Delivered.SENT
        assert w.service.handle(queued.model_dump_json()) == Delivered.DUPLICATE

        assert w.mailer.calls == 1 and w.texter.calls == 0
        assert w.mailer.sent[0].to == "frank@example.com"
        assert w.jobs.get(queued.key) == "sent"
        assert w.counts["Messages_sent"] == 1 and w.counts["Messages_duplicate"] == 1
        # MessageSent once after the send, and again for the redelivery (consumers dedupe)
        assert w.outcomes.published == [queued.key, queued.key]

    def test_an_sms_goes_through_the_texter_and_its_parts_are_counted(self):
        w = world(frank_sms())
        queued = job("sms", "hello")

        assert w.service.handle(queued.model_dump_json()) == Delivered.SENT

        assert w.mailer.calls == 0
        assert w.texter.sent == [Sms("+33612345678", "Alpine & Court: hi Frank!", 1)]
        assert w.counts["SmsParts"] == 1

    def test_a_provider_that_is_unavailable_leaves_the_job_for_a_retry(self):
        w = world(customer())
        w.mailer.failures.append(ProviderUnavailable("Throttling"))
        queued = job()

        with pytest.raises(ProviderUnavailable):
            w.service.handle(queued.model_dump_json())
        assert w.jobs.get(queued.key) == "queued"
        assert w.mailer.sent == [] and w.dead_letters.rejected == []
        assert w.counts["ProviderRetries"] == 1

        assert w.service.handle(queued.model_dump_json()) == Delivered.SENT  # the queue's retry
        assert len(w.mailer.sent) == 1 and w.jobs.get(queued.key) == "sent"

    def test_a_refused_message_fails_and_is_dead_lettered_with_the_reason(self):
        w = world(customer())
        w.mailer.failures.append(ProviderRejected("MessageRejected"))
        queued = job()
        body = queued.model_dump_json()

        assert w.service.handle(body) == Delivered.FAILED

        assert w.jobs.get(queued.key) == "failed"
        assert "MessageRejected" in w.jobs.reason[queued.key]
        [(dead_body, key, reasons)] = w.dead_letters.rejected
        assert dead_body == body and key == queued.key
        assert any("MessageRejected" in r for r in reasons)
        # and it is not tried again
        assert w.service.handle(body) == Delivered.DUPLICATE and w.mailer.calls == 1

    def test_no_consent_is_recorded_as_suppressed_and_nothing_is_sent(self):
        w = world(customer(consent=NO_CONSENT))
        queued = job()

        assert w.service.handle(queued.model_dump_json()) == Delivered.SUPPRESSED

        assert w.jobs.get(queued.key) == "suppressed"
        assert "consent" in w.jobs.reason[queued.key]
        assert w.mailer.calls == 0 and w.texter.calls == 0
        assert w.counts["Messages_suppressed"] == 1

    def test_an_unknown_customer_is_suppressed(self):
        w = world()
        queued = job(subject="customer:nobody")
        assert w.service.handle(queued.model_dump_json()) == Delivered.SUPPRESSED
        assert w.jobs.reason[queued.key] == "unknown customer"
        assert w.mailer.calls == 0

    def test_a_suppressed_address_is_looked_up_hashed_and_not_written_to(self):
        w = world(customer(email="Frank@Example.com"), suppressed=("frank@example.com",))
        queued = job()

        assert w.service.handle(queued.model_dump_json()) == Delivered.SUPPRESSED
        assert "suppressed" in w.jobs.reason[queued.key]
        assert w.mailer.calls == 0

    def test_a_suppressed_number_is_not_texted(self):
        w = world(frank_sms(), suppressed=("+33612345678",))
        assert w.service.handle(job("sms", "hello").model_dump_json()) == Delivered.SUPPRESSED
        assert w.texter.calls == 0

    def test_a_message_held_back_records_why_and_sends_nothing(self):
        w = world(customer(first_name=None))
        queued = job()

        assert w.service.handle(queued.model_dump_json()) == Delivered.HELD

        assert w.jobs.get(queued.key) == "held"
        assert "'welcome'" in w.jobs.reason[queued.key]
        assert "first_name" in w.jobs.reason[queued.key]
        assert w.mailer.calls == 0
        assert len(w.logs) == 1
        # held once: the same job again does not flip it
        assert w.service.handle(queued.model_dump_json()) == Delivered.DUPLICATE

    def test_a_missing_template_is_held(self):
        w = world(customer(), templates=(sms_template(),))
        queued = job(template="welcome")
        assert w.service.handle(queued.model_dump_json()) == Delivered.HELD
        assert "'welcome'" in w.jobs.reason[queued.key]

    def test_a_job_before_the_send_time_is_scheduled_and_nothing_is_sent(self):
        w = world(customer(), now=paris(2025, 6, 16, 8, 31).astimezone(UTC))
        queued = job(send_immediately=False, at=paris(2025, 6, 16, 8, 30))

        assert w.service.handle(queued.model_dump_json()) == Delivered.SCHEDULED

        assert w.jobs.get(queued.key) == "scheduled"
        assert paris(2025, 6, 16, 9, 0).isoformat() in w.jobs.reason[queued.key]
        assert w.mailer.calls == 0

    def test_a_scheduled_job_is_sent_once_its_time_has_come(self):
        w = world(customer(), now=paris(2025, 6, 16, 8, 31))
        queued = job(send_immediately=False, at=paris(2025, 6, 16, 8, 30))
        assert w.service.handle(queued.model_dump_json()) == Delivered.SCHEDULED

        w.clock.at = paris(2025, 6, 16, 9, 1)
        assert w.service.handle(queued.model_dump_json()) == Delivered.SENT
        assert len(w.mailer.sent) == 1

    def test_a_sender_error_of_unknown_outcome_is_dead_lettered_as_unknown_not_retried(self):
        w = world(customer())
        w.mailer.failures.append(ConnectionClosedError(endpoint_url="https://email.example"))
        queued = job()
        body = queued.model_dump_json()

        assert w.service.handle(body) == Delivered.UNKNOWN

        assert w.jobs.get(queued.key) == "unknown"
        # reported as what it is: not MessageSuppressed (the mail may have been delivered)
        assert w.jobs.reported_as[queued.key] == "MessageOutcomeUnknown"
        assert w.outcomes.published == []
        assert "ConnectionClosedError" in w.jobs.reason[queued.key]
        [(dead_body, key, reasons)] = w.dead_letters.rejected
        assert dead_body == body and key == queued.key
        assert any("ConnectionClosedError" in r for r in reasons)
        assert w.service.handle(body) == Delivered.DUPLICATE and w.mailer.calls == 1

    def test_an_address_with_a_line_break_is_suppressed_with_why_and_never_sent(self):
        w = world(customer(email="frank@example.com\r\nBcc: all@example.com"))
        queued = job()

        assert w.service.handle(queued.model_dump_json()) == Delivered.SUPPRESSED

        assert w.jobs.reason[queued.key] == "the e-mail address is not a valid address"
        assert w.mailer.calls == 0 and w.dead_letters.rejected == []
        assert w.counts["Suppressed_invalid_address"] == 1

    def test_a_failed_record_is_logged_at_error_with_its_job_key_and_counted(self):
        errors: list[tuple[Any, ...]] = []
        w = world(customer())
        w.service.error = lambda *args, **kwargs: errors.append(args)
        w.mailer.failures.append(ProviderUnavailable("Throttling"))
        queued = job()

        with pytest.raises(ProviderUnavailable):
            w.service.handle_record(queued.model_dump_json(), receive_count=1)

        [(message, key, *_)] = errors
        assert key == queued.key and "failed" in message
        assert w.counts["MessageErrors_ProviderUnavailable"] == 1
        # on the queue's last try it is dead-lettered with why instead of redriven silently
        w.mailer.failures.append(ProviderUnavailable("Throttling"))
        assert w.service.handle_record(queued.model_dump_json(), receive_count=8) == "failed"
        [(_, _, reasons)] = w.dead_letters.rejected
        assert "unavailable on the last try" in reasons[0]
