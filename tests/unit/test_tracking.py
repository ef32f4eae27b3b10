"""Opens and clicks without AWS: the tags an e-mail carries, what SES's event for it becomes, and
the service that decides it with fakes of the store and the catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Any

import pytest
from dialogue.aws.providers import RateLimiter, SesMailer
from dialogue.delivery.engagement import Engagement, EngagementService
from dialogue.delivery.plan import DeliverySettings, Email, plan
from dialogue.delivery.service import SuppressionService
from dialogue.delivery.tracking import (
    MAX_TAG,
    Ignored,
    behaviour_event,
    decode_tag,
    encode_tag,
    message_tags,
)
from dialogue.engine.catalog import Catalog
from dialogue.model.customer import ConsentState, CustomerState
from dialogue.model.effects import AnyEffect, MessageQueued
from dialogue.model.events import CustomEvent, Profile
from dialogue.model.template import EmailTemplate
from dialogue.ports import Conflict

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TAGS = {"dialogue-subject": ["customer_3Ac-1"], "dialogue-activity": ["summer_2Esale"],
        "dialogue-template": ["summer-mail"], "ses:configuration-set": ["dialogue-marketing"]}


def job(subject: str = "customer:c-1", activity: str = "summer.sale",
        template: str = "summer-mail") -> MessageQueued:
    return MessageQueued(activity_id=activity, element_id="mail", subject=subject, entry=1,
                         at=NOW, channel="email", template=template, send_immediately=True,
                         event_id="evt-1")


def ses(detail_type: str = "Email Opened", tags: dict[str, Any] | None = None,
        event_id: str = "eb-1", **what: Any) -> dict[str, Any]:
    """An SES open, click, delivery or bounce as EventBridge delivers it."""
    key = {"Email Opened": "open", "Email Clicked": "click", "Email Delivered": "delivery",
           "Email Bounced": "bounce"}[detail_type]
    return {"version": "0", "id": event_id, "source": "aws.ses", "account": "123456789012",
            "region": "eu-west-1", "resources": [], "detail-type": detail_type,
            "time": "2025-06-15T12:05:01Z",
            "detail": {"eventType": {"delivery": "Delivery"}.get(key, key.title()),
                       "mail": {"messageId": "m-1", "destination": ["frank@example.com"],
                                "tags": TAGS if tags is None else tags},
                       key: {"timestamp": "2025-06-15T12:05:00.123Z", "ipAddress": "192.0.2.1",
                             "userAgent": "Mail", **what}}}


# --- tags ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["customer:c-1", "guest:p-3f9a61c2", "a_b", "Zoë & Ana",
                                   "x@y.example", "summer.sale"])
def test_a_tag_value_is_in_ses_alphabet_and_decodes_back(value: str):
    encoded = encode_tag(value)
    assert encoded is not None and all(c.isascii() and (c.isalnum() or c in "_-")
                                       for c in encoded)
    assert decode_tag(encoded) == value


def test_a_value_too_long_for_a_tag_is_not_encoded():
    assert encode_tag("c" * MAX_TAG) == "c" * MAX_TAG
    assert encode_tag("c" * (MAX_TAG + 1)) is None
    assert encode_tag(":" * 86) is None  # 3 characters each once escaped


@pytest.mark.parametrize("value", ["", "a b", "_4", "_zz", "_C3", "a.b"])
def test_what_encode_never_writes_does_not_decode(value: str):
    with pytest.raises(ValueError):
        decode_tag(value)


def test_a_mail_is_tagged_with_its_customer_activity_and_template_only():
    assert message_tags(job()) == {"dialogue-subject": "customer_3Ac-1",
                                   "dialogue-activity": "summer_2Esale",
                                   "dialogue-template": "summer-mail"}


def test_a_mail_whose_customer_id_does_not_fit_a_tag_is_not_tagged_at_all():
    assert message_tags(job(subject="customer:" + "é" * 100)) == {}


def test_the_planned_email_carries_the_tags_and_the_mailer_hands_them_to_ses():
    settings = DeliverySettings(sender="Shop <news@shop.example>", shop_name="Shop",
                                shop_url="https://shop.example",
                                unsubscribe_url="https://shop.example/unsubscribe",
                                unsubscribe_secret=b"s", send_time=time(9),
                                configuration_set="dialogue-marketing")
    state = CustomerState(subject="customer:c-1", profile=Profile(email="frank@example.com"),
                          consent=ConsentState(email=True))
    template = EmailTemplate(id="summer-mail", channel="email", subject="Hi", text="Hello")
    email = plan(job(), state, False, template, NOW, settings)
    assert isinstance(email, Email) and email.tags == message_tags(job())

    class Client:
        args: dict[str, Any] = {}

        def send_email(self, **args: Any) -> dict[str, str]:
            Client.args = args
            return {"MessageId": "m-1"}

    SesMailer(Client(), RateLimiter(0), "dialogue-marketing").send(email)
    assert Client.args["EmailTags"] == [{"Name": k, "Value": v} for k, v in email.tags.items()]
    assert "frank" not in json.dumps(Client.args["EmailTags"])


# --- SES's event → the customer's behaviour -----------------------------------------------------
def test_an_open_becomes_an_emailopened_custom_event_of_the_tagged_customer():
    event = behaviour_event(ses())
    detail = event.detail
    assert isinstance(detail, CustomEvent)
    assert (detail.name, detail.customer_id, detail.event_id) == ("EmailOpened", "c-1", "ses:eb-1")
    assert detail.parameters == {"campaign": "summer.sale", "template": "summer-mail"}
    assert detail.occurred_at == datetime(2025, 6, 15, 12, 5, 0, 123000, tzinfo=UTC)


def test_a_click_keeps_the_link_without_its_query_and_fragment():
    event = behaviour_event(ses("Email Clicked",
                                link="https://shop.example/sale/ski?t=secret&c=customer:c-1#top"))
    assert isinstance(event.detail, CustomEvent)
    assert event.detail.name == "EmailClicked"
    assert event.detail.parameters["link"] == "https://shop.example/sale/ski"


def test_a_guests_mail_names_the_guest():
    event = behaviour_event(ses(tags={**TAGS, "dialogue-subject": ["guest_3Ap-9"]}))
    assert event.subject == "guest:p-9"


@pytest.mark.parametrize(("tags", "why"), [
    ({}, "untagged"),
    ({"ses:configuration-set": ["other"]}, "untagged"),
    ({**TAGS, "dialogue-subject": ["a b"]}, "malformed"),
    ({**TAGS, "dialogue-subject": ["shop_3Ac-1"]}, "malformed"),
    ({**TAGS, "dialogue-activity": []}, "malformed"),
])
def test_an_event_without_readable_tags_is_ignored_with_why(tags: dict[str, Any], why: str):
    with pytest.raises(Ignored) as e:
        behaviour_event(ses(tags=tags))
    assert e.value.why == why


# --- the service ----------------------------------------------------------------------------------
class FakeStore:
    def __init__(self, *states: CustomerState, conflicts: int = 0):
        self.states = {s.subject: s for s in states}
        self.conflicts = conflicts

    def load(self, subject: str) -> CustomerState:
        return self.states.get(subject, CustomerState(subject=subject))

    def commit(self, state: CustomerState, effects: list[AnyEffect],
               before: CustomerState | None = None) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict(state.subject)
        self.states[state.subject] = state.model_copy(update={"version": state.version + 1})


class FakeCatalogs:
    def catalog(self, max_age: float | None = None) -> Catalog:
        return Catalog([])


class FakeClock:
    def now(self) -> datetime:
        return NOW


def service(store: FakeStore, counted: list[str]) -> EngagementService:
    return EngagementService(store, FakeCatalogs(), FakeClock(),
                             lambda name, n: counted.append(name), lambda *a: None)


def frank(tracking: bool = True) -> CustomerState:
    return CustomerState(subject="customer:c-1", version=3,
                         consent=ConsentState(email=True, tracking=tracking))


def test_an_open_is_recorded_once_however_often_it_is_delivered():
    store, counted = FakeStore(frank(), conflicts=1), []
    engagement = service(store, counted)
    assert engagement.handle(ses()) == Engagement.RECORDED  # after a write conflict
    assert engagement.handle(ses()) == Engagement.DUPLICATE
    [opened] = store.states["customer:c-1"].behaviour
    assert (opened.kind, opened.fields["campaign"]) == ("EmailOpened", "summer.sale")
    assert counted.count("EmailEngagement_recorded") == 1
    assert counted.count("EmailEngagement_duplicate") == 1


def test_without_tracking_consent_nothing_is_kept():
    store = FakeStore(frank(tracking=False))
    assert service(store, []).handle(ses()) == Engagement.NOT_TRACKED
    assert store.states["customer:c-1"].behaviour == []


def test_an_unknown_customer_is_not_created():
    store, counted = FakeStore(), []
    assert service(store, counted).handle(ses()) == Engagement.UNKNOWN_CUSTOMER
    assert store.states == {} and counted == ["EmailEngagement_unknown_customer"]


def test_the_ses_events_service_hands_opens_on_and_suppresses_bounces_and_hands_them_on():
    handed: list[dict[str, Any]] = []
    suppressed: list[tuple[str, str]] = []

    class Suppressions:
        def suppress(self, address_hash: str, reason: str, at: Any) -> None:
            suppressed.append((address_hash, reason))

    class Engagements:
        def handle(self, event: dict[str, Any]) -> Any:
            handed.append(event)

    ses_events = SuppressionService(Suppressions(), FakeClock(), lambda name, n: None,
                                    Engagements())
    assert ses_events.handle(json.dumps(ses())) == 0
    bounce = {"detail-type": "Email Bounced", "detail": {"bounce": {
        "bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "f@example.com"}]}}}
    assert ses_events.handle(json.dumps(bounce)) == 1
    assert [e.get("id") for e in handed] == ["eb-1", None]  # the bounce too: a path may wait
    assert [reason for _, reason in suppressed] == ["permanent bounce (General)"]


# --- deliveries and bounces ---------------------------------------------------------------------
def test_a_delivery_and_a_bounce_become_custom_events_of_the_tagged_customer():
    delivered = behaviour_event(ses("Email Delivered", processingTimeMillis=546,
                                    recipients=["frank@example.com"]))
    bounced = behaviour_event(ses("Email Bounced", event_id="eb-2", bounceType="Transient",
                                  bouncedRecipients=[{"emailAddress": "frank@example.com"}]))
    assert isinstance(delivered.detail, CustomEvent) and isinstance(bounced.detail, CustomEvent)
    assert (delivered.detail.name, delivered.detail.parameters) == (
        "EmailDelivered", {"campaign": "summer.sale", "template": "summer-mail"})
    assert (bounced.detail.name, bounced.detail.parameters["bounce_type"]) == (
        "EmailBounced", "Transient")
    assert delivered.detail.occurred_at == datetime(2025, 6, 15, 12, 5, 0, 123000, tzinfo=UTC)
    assert "frank" not in json.dumps(bounced.detail.parameters)  # never the address


def awaiting(outcome: str) -> Catalog:
    from dialogue.model.activity import Activity

    return Catalog([Activity.model_validate({
        "id": "summer.sale", "name": "Summer", "elements": [
            {"id": "registered", "type": "registers", "next": "mail"},
            {"id": "mail", "type": "send_message", "channel": "email",
             "template": "summer-mail", "next": "outcome"},
            {"id": "outcome", "type": "message_outcome", "message": "mail", "outcome": outcome,
             "timeout": {"unit": "days", "amount": 1}}]})])


@pytest.mark.parametrize(("detail_type", "outcome", "read"), [
    ("Email Delivered", "bounced", False), ("Email Bounced", "delivered", False),
    ("Email Delivered", "delivered", True), ("Email Bounced", "bounced", True),
    ("Email Opened", "bounced", True)])  # opens are behaviour whatever waits
def test_a_delivery_or_bounce_nobody_waits_for_reads_no_state(detail_type: str,
                                                                 outcome: str, read: bool):
    loads: list[str] = []

    class Store(FakeStore):
        def load(self, subject: str) -> CustomerState:
            loads.append(subject)
            return super().load(subject)

    class Catalogs:
        def catalog(self, max_age: float | None = None) -> Catalog:
            return awaiting(outcome)

    counted: list[str] = []
    engagement = EngagementService(Store(frank()), Catalogs(), FakeClock(),
                                   lambda name, n: counted.append(name), lambda *a: None)
    result = engagement.handle(ses(detail_type))
    assert (loads != []) is read
    assert (result == Engagement.UNAWAITED) is (not read)
