"""Decide what happens to one message job: send it, suppress it, hold it back, or schedule it.

Pure: the job, the customer's state, whether the address is suppressed, the template and `now`
in; a plan out. Nothing is sent without consent and an address, and a template that cannot be
rendered for this customer holds the message back with the reason instead of sending a gap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from dialogue.delivery.quiet import describe, quiet_until
from dialogue.delivery.render import RenderError, render
from dialogue.delivery.sms import InvalidNumber, e164, parts
from dialogue.delivery.tracking import message_tags
from dialogue.model.controls import QuietHours
from dialogue.model.customer import CustomerState
from dialogue.model.effects import MessageQueued
from dialogue.model.template import EmailTemplate, MessageTemplate, SmsTemplate

# One address (local part @ domain with a dot), nothing a header could be split on: a line
# break, a space, a control character, a comma or angle brackets make it no address at all.
_NOT_IN_ADDRESS = r"\s\x00-\x1f\x7f@<>()\[\]\\,;:\""
_PART = f"[^{_NOT_IN_ADDRESS}]"
_EMAIL = re.compile(rf"{_PART}{{1,64}}@{_PART}+\.[^{_NOT_IN_ADDRESS}.]{{2,}}")


def valid_email(address: str) -> bool:
    """Checked before SES sees it: SES would refuse it, or take a CRLF as a new header."""
    return len(address) <= 254 and _EMAIL.fullmatch(address) is not None


@dataclass(frozen=True)
class DeliverySettings:
    sender: str  # "Shop <news@shop.example>", a verified SES identity
    shop_name: str
    shop_url: str
    unsubscribe_url: str  # the shop's page; it turns the customer's e-mail consent off
    unsubscribe_secret: bytes
    send_time: time = time(9, 0)
    time_zone: str = "UTC"
    configuration_set: str | None = None
    quiet_hours: QuietHours | None = None  # the shop's default, for activities without their own


@dataclass(frozen=True)
class Email:
    to: str
    sender: str
    reply_to: str | None
    subject: str
    text: str
    html: str | None
    headers: dict[str, str]
    # SES tags: whom and why, for its open and click events (`tracking`); no address.
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sms:
    to: str
    text: str
    parts: int


@dataclass(frozen=True)
class Suppress:
    reason: str
    # the metric it is counted under: no_consent, no_address, suppressed, unknown_customer
    kind: str = field(default="other", compare=False)


@dataclass(frozen=True)
class Hold:
    reason: str


@dataclass(frozen=True)
class Schedule:
    release_at: datetime
    reason: str | None = None  # why, when it is not the daily send time


Plan = Email | Sms | Suppress | Hold | Schedule


def address_of(job: MessageQueued, state: CustomerState | None) -> str | None:
    """The address a job goes to, normalised (lower-case e-mail, E.164 number), if any."""
    if state is None:
        return None
    if job.channel == "email":
        return (state.profile.email or "").strip().lower() or None
    try:
        return e164(state.profile.phone, state.profile.country) if state.profile.phone else None
    except InvalidNumber:
        return None


def suppression_key(address: str) -> str:
    """Addresses are kept hashed: the suppression list holds no personal data in clear."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


LATE_DECISION = timedelta(hours=12)


def release_time(queued_at: datetime, settings: DeliverySettings) -> datetime:
    """The first daily send time at or after the moment the message was queued."""
    zone = ZoneInfo(settings.time_zone)
    local = queued_at.astimezone(zone)
    release = datetime.combine(local.date(), settings.send_time, zone)
    return release if release >= local else datetime.combine(
        local.date() + timedelta(days=1), settings.send_time, zone)


def plan(job: MessageQueued, state: CustomerState | None, suppressed: bool,
         template: MessageTemplate | None, now: datetime, settings: DeliverySettings,
         released: bool = False) -> Plan:
    """`released`: the job comes back from the release function (not from the outbox)."""
    if job.capped is not None:  # by a frequency cap, when it was decided (`engine.caps`)
        if job.not_before is None:
            return Suppress(f"skipped: capped by {job.capped}", "capped")
        if now < job.not_before:
            return Schedule(job.not_before, f"held: capped by {job.capped}, release at "
                                            f"{job.not_before.isoformat()}")
    if not job.send_immediately:
        # A message decided for a day long past (a daily check catching up a missed night)
        # waits for the next send time rather than going out in the middle of the night.
        release = release_time(max(job.at, now - LATE_DECISION), settings)
        if now < release:
            return Schedule(release)
    if job.rate_limit is not None and not released:  # spread by the release function
        return Schedule(now, f"held: rate limit {job.rate_limit.label}, release at "
                             f"{now.isoformat()} or later")
    if state is None:
        return Suppress("unknown customer", "unknown_customer")
    quiet = _quiet(job, state, now, settings)
    if quiet is not None:
        return quiet
    if template is None:
        return Hold(f"template {job.template!r} does not exist")
    if template.channel != job.channel:
        return Hold(f"template {job.template!r} is for {template.channel}, not {job.channel}")
    consent = state.consent.email if job.channel == "email" else state.consent.sms
    if not consent:
        return Suppress(f"no {job.channel} marketing consent", "no_consent")
    address = address_of(job, state)
    if address is None:
        what = "e-mail address" if job.channel == "email" else "valid phone number"
        return Suppress(f"no {what}", "no_address")
    if job.channel == "email" and not valid_email(address):
        return Suppress("the e-mail address is not a valid address", "invalid_address")
    if suppressed:
        return Suppress("address suppressed after a bounce, a complaint or an unsubscribe",
                        "suppressed")
    unsubscribe = _unsubscribe_url(state.subject, settings)
    context = _context(job, state, settings, unsubscribe if job.channel == "email" else None)
    try:
        rendered = render(template, context)
    except RenderError as e:
        return Hold(str(e))
    if isinstance(template, SmsTemplate):
        return Sms(to=address, text=rendered.text, parts=parts(rendered.text))
    assert isinstance(template, EmailTemplate) and rendered.subject is not None
    return Email(to=address, sender=settings.sender, reply_to=job.reply_to,
                 subject=rendered.subject, text=rendered.text, html=rendered.html,
                 headers={"List-Unsubscribe": f"<{unsubscribe}>",
                          "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
                 tags=message_tags(job))


def _quiet(job: MessageQueued, state: CustomerState, now: datetime,
           settings: DeliverySettings) -> Schedule | Suppress | None:
    """Inside quiet hours or on a blackout day (the activity's, else the shop's): held until
    the window opens, or skipped, as the activity says; None when it may go now."""
    window = job.quiet_hours or settings.quiet_hours
    if window is None:
        return None
    zone = state.profile.time_zone or settings.time_zone
    opening = quiet_until(window, now, ZoneInfo(zone))
    if opening is None:
        return None
    why = describe(window, zone)
    if window.then == "skip":
        return Suppress(f"skipped: {why}", "quiet_hours")
    return Schedule(opening, f"held: {why}, release at {opening.isoformat()}")


def _context(job: MessageQueued, state: CustomerState, settings: DeliverySettings,
             unsubscribe: str | None) -> dict[str, Any]:
    profile = state.profile.model_dump(mode="json", exclude_none=True)
    context: dict[str, Any] = {**job.context, "customer": profile,
                               "shop": {"name": settings.shop_name, "url": settings.shop_url}}
    if state.cart is not None and state.cart.lines:
        context["cart"] = state.cart.model_dump(mode="json")
    if unsubscribe:
        context["unsubscribe_url"] = unsubscribe
    return context


def _unsubscribe_url(subject: str, settings: DeliverySettings) -> str:
    token = hmac.new(settings.unsubscribe_secret, subject.encode(), hashlib.sha256).hexdigest()
    joiner = "&" if "?" in settings.unsubscribe_url else "?"
    return f"{settings.unsubscribe_url}{joiner}{urlencode({'c': subject, 't': token[:32]})}"
