"""Opens, clicks, deliveries and bounces: the tags an e-mail carries, and the behaviour SES's
event for it becomes.

send_message tags every e-mail (SES `EmailTags`) with whom it went to and why: the customer's
state key (the shop's customer id), the activity and the template, never the address it goes
to. SES copies a mail's tags into each event it publishes for it (`mail.tags`), so an `Email
Opened`, `Email Clicked`, `Email Delivered` or `Email Bounced` event on the default bus names its
customer and campaign. Here such an event becomes the `CustomEvent` a shop would have sent
(`EmailOpened`, `EmailClicked`, `EmailDelivered`, `EmailBounced`; parameters `campaign`,
`template` and, for a click, `link`, for a bounce, `bounce_type`), for the engine to decide as
any other behaviour.

A tag holds only ASCII letters, digits, `_` and `-`, 256 characters at most (SES's MessageTag):
any other character is written `_XX`, per UTF-8 byte (`customer:c.1` → `customer_3Ac_2E1`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from dialogue.model.effects import MessageQueued
from dialogue.model.events import ShopEvent, event_errors, parse_event

TAG_SUBJECT = "dialogue-subject"
TAG_ACTIVITY = "dialogue-activity"
TAG_TEMPLATE = "dialogue-template"
MAX_TAG = 256
MAX_LINK = 1024
# SES's detail-type on EventBridge → the behaviour's name, and the detail's key for its object
# (https://docs.amazonaws.cn/en_us/eventbridge/latest/ref/events-ref-ses.md names the detail-types;
# https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html the
# objects: `delivery`, `bounce`, `open`, `click`, each with its `timestamp`).
ENGAGEMENT = {"Email Opened": ("EmailOpened", "open"), "Email Clicked": ("EmailClicked", "click"),
              "Email Delivered": ("EmailDelivered", "delivery"),
              "Email Bounced": ("EmailBounced", "bounce")}
# What happened to the mail rather than what the customer did: it reaches the customer's
# decisions only when an activity awaits it (`message_outcome` `delivered` / `bounced`).
MAIL_OUTCOMES = {"EmailDelivered": "delivered", "EmailBounced": "bounced"}

_KEPT = re.compile(r"[A-Za-z0-9-]")
_HEX = re.compile(r"[0-9A-F]{2}")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_-]+")


class Ignored(ValueError):
    """An open or a click that cannot be anyone's behaviour; `why` is what it is counted as:
    `untagged` (a mail dialogue did not send, or sent before tagging) or `malformed`."""

    def __init__(self, why: str, reason: str):
        super().__init__(reason)
        self.why = why


def encode_tag(value: str) -> str | None:
    """`value` in SES's tag alphabet; None when it would not fit in a tag."""
    out = "".join(c if _KEPT.fullmatch(c) else "".join(f"_{b:02X}" for b in c.encode())
                  for c in value)
    return out if 0 < len(out) <= MAX_TAG else None


def decode_tag(value: str) -> str:
    """The inverse of `encode_tag`; ValueError for what it never writes."""
    if not _TAG_VALUE.fullmatch(value):
        raise ValueError("not an encoded tag value")  # the value itself is never logged
    out, i = bytearray(), 0
    while i < len(value):
        if value[i] != "_":
            out += value[i].encode()
            i += 1
        elif _HEX.fullmatch(value[i + 1:i + 3]):
            out.append(int(value[i + 1:i + 3], 16))
            i += 3
        else:
            raise ValueError("not an encoded tag value")  # the value itself is never logged
    return out.decode()  # a UnicodeDecodeError is a ValueError


def message_tags(job: MessageQueued) -> dict[str, str]:
    """The tags of a job's e-mail; none (the mail is not tracked) when one would not fit."""
    values = {TAG_SUBJECT: encode_tag(job.subject), TAG_ACTIVITY: encode_tag(job.activity_id),
              TAG_TEMPLATE: encode_tag(job.template)}
    tags = {name: value for name, value in values.items() if value is not None}
    return tags if len(tags) == len(values) else {}


def behaviour_event(event: dict[str, Any]) -> ShopEvent:
    """The CustomEvent an SES `Email Opened` / `Clicked` / `Delivered` / `Bounced` event stands
    for. Its event id is
    the EventBridge envelope's: a redelivery of the same event is recognised as applied."""
    name, key = ENGAGEMENT[str(event.get("detail-type"))]
    detail = _object(event.get("detail"))
    tags = _object(_object(detail.get("mail")).get("tags"))
    if TAG_SUBJECT not in tags:
        raise Ignored("untagged", f"{name} of a mail without the {TAG_SUBJECT} tag")
    try:
        subject = decode_tag(_first(tags[TAG_SUBJECT]))
        parameters = {"campaign": decode_tag(_first(tags.get(TAG_ACTIVITY))),
                      "template": decode_tag(_first(tags.get(TAG_TEMPLATE)))}
    except ValueError as e:
        raise Ignored("malformed", f"{name}: unreadable tags: {e}") from e
    what = _object(detail.get(key))
    if name == "EmailClicked":
        parameters["link"] = _link(what.get("link"))
    elif name == "EmailBounced":  # Permanent, Transient (SES gave up retrying) or Undetermined
        parameters["bounce_type"] = str(what.get("bounceType") or "Undetermined")[:32]
    kind, _, who = subject.partition(":")
    if kind not in ("customer", "guest") or not who:
        raise Ignored("malformed", f"{name}: {TAG_SUBJECT} names no customer")
    raw = {
        "version": "0", "id": event.get("id"), "source": event.get("source", "aws.ses"),
        "account": event.get("account"), "region": event.get("region"),
        "detail-type": "CustomEvent", "time": event.get("time"),
        "detail": {
            "event_id": f"ses:{event.get('id')}",
            ("customer_id" if kind == "customer" else "personalization_id"): who,
            "occurred_at": what.get("timestamp") or event.get("time"),
            "name": name, "parameters": parameters},
    }
    try:
        return parse_event(raw)
    except ValidationError as e:
        raise Ignored("malformed", f"{name}: " + "; ".join(event_errors(e))) from e


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(values: Any) -> str:
    """SES gives each tag as a list of values; ours have one."""
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    raise ValueError(f"expected one tag value, got {values!r}")


def _link(value: Any) -> str:
    """The clicked address without its query and fragment: they may carry tokens (the
    unsubscribe link's) or personal data a template put there, which behaviour must not keep."""
    if not isinstance(value, str) or not value:
        return ""
    parts = urlsplit(value)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:MAX_LINK]
