"""Outcome events: what dialogue publishes on the shop's bus (source `dialogue`), one model per
detail-type, flat (no DynamoDB attribute types), schema in docs/schema/outcome.schema.json.

The table rows they come from are read here as plain dicts (the adapter has already turned the
stream record's typed attributes into values), so the shape of a detail is decided in one place.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OutcomeDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    customer: str = Field(description="the subject: `customer:<customer_id>` or "
                                      "`guest:<personalization_id>`")


class MessageDetail(OutcomeDetail):
    key: str = Field(description="the message's idempotency key: deduplicate on it")
    activity_id: str
    element_id: str
    channel: Literal["email", "sms"]
    template: str


class MessageSent(MessageDetail):
    """SES or SNS took the message."""

    provider: str
    sent_at: datetime


class MessageSuppressed(MessageDetail):
    """The message was not sent, with why."""

    status: Literal["suppressed", "held", "failed"]
    reason: str
    at: datetime


class MessageOutcomeUnknown(MessageDetail):
    """send_message died, or the provider's reply was lost, after the job was claimed: the
    message may or may not have been delivered, and it is never sent again (SES and SNS take no
    idempotency key). The job is in the messages dead-letter queue with the same reason."""

    reason: str
    at: datetime


class CouponIssued(OutcomeDetail):
    """An activity issued a coupon."""

    key: str = Field(description="the coupon's idempotency key: deduplicate on it")
    activity_id: str
    element_id: str
    promotion: str
    code: str
    issued_at: datetime
    expires_at: datetime


class SegmentEntered(OutcomeDetail):
    """The customer joined a segment (an activity's add, or a rule-based segment's refresh)."""

    segment: str
    since: datetime
    by: str = Field(description="the activity id, or `rule`")
    until: datetime | None = Field(None, description="end of a time-limited membership")


class SegmentLeft(OutcomeDetail):
    """The customer left a segment (removed, or a time-limited membership ended)."""

    segment: str


OUTCOMES: dict[str, type[OutcomeDetail]] = {
    m.__name__: m for m in (CouponIssued, MessageSent, MessageSuppressed, MessageOutcomeUnknown,
                            SegmentEntered, SegmentLeft)}


def outcome_of_row(event_name: str, keys: dict[str, Any],
                   image: dict[str, Any]) -> OutcomeDetail | None:
    """The outcome a changed table row stands for (None: not an outcome row).

    `image` is the row after the change (empty for a REMOVE), `keys` its key, both plain."""
    pk = str(keys.get("pk", ""))
    if event_name == "REMOVE":
        if not pk.startswith("SEGMENT#"):
            return None
        return SegmentLeft(customer=str(keys["sk"]), segment=pk.split("#")[1])
    match image.get("outcome"):
        case "CouponIssued":
            return CouponIssued(
                customer=image["subject"], key=pk.removeprefix("COUPON#"),
                activity_id=image["activity_id"], element_id=image["element_id"],
                promotion=image["promotion"], code=image["code"],
                issued_at=image["issued_at"], expires_at=image["expires_at_iso"])
        case "SegmentEntered":
            until = image.get("expires_at")
            return SegmentEntered(
                customer=image["subject"], segment=image["segment"], since=image["since"],
                by=image["by"],
                until=None if until is None else datetime.fromtimestamp(int(until), UTC))
        case "MessageSuppressed" | "MessageOutcomeUnknown" as kind:
            job = _job(image)
            # suppressed / held: `<status>_at`; failed / unknown: `settled_at` (delivery/jobs.py)
            at = image.get(f"{image['status']}_at") or image.get("settled_at") or image.get(
                "reported_at")
            common = {"customer": image["subject"], "key": pk.removeprefix("JOB#"),
                      "activity_id": image["activity_id"], "element_id": job["element_id"],
                      "channel": image["channel"], "template": image["template"],
                      "reason": image.get("reason", ""), "at": at}
            if kind == "MessageOutcomeUnknown":
                return MessageOutcomeUnknown(**common)
            return MessageSuppressed(status=image["status"], **common)
    return None


def _job(image: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(image["payload"])
    return payload


def schema() -> dict[str, Any]:
    """The JSON Schema of every outcome event's `detail`, keyed by detail-type."""
    return {"title": "Outcome events (source dialogue): detail by detail-type",
            "oneOf": [{"title": name, **model.model_json_schema()}
                      for name, model in OUTCOMES.items()]}
