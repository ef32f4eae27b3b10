"""Which addresses an SES event says must not be written to again.

SES publishes to the default EventBridge bus (a configuration set's EventBridge destination):
`Email Bounced` (only a permanent bounce suppresses: a soft one may pass tomorrow),
`Email Complaint Received` (the customer marked the mail as spam) and `Email Subscribed` when
the customer unsubscribed from everything through SES's own subscription management. (The
shop's unsubscribe page, the link in every e-mail, turns the e-mail consent off instead, with a
CustomerUpdated event.)
"""

from __future__ import annotations

from typing import Any


def addresses_to_suppress(detail_type: str, detail: dict[str, Any]) -> list[tuple[str, str]]:
    """(address, reason) pairs; nothing for any other event."""
    if detail_type == "Email Bounced":
        bounce = detail.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return []
        reason = f"permanent bounce ({bounce.get('bounceSubType', 'General')})"
        recipients = bounce.get("bouncedRecipients") or []
    elif detail_type == "Email Complaint Received":
        reason = "complaint"
        recipients = (detail.get("complaint") or {}).get("complainedRecipients") or []
    elif detail_type == "Email Subscribed":  # SES subscription management: "unsubscribe all"
        preferences = (detail.get("subscription") or {}).get("newTopicPreferences") or {}
        if not preferences.get("unsubscribeAll"):
            return []
        reason = "unsubscribe"
        recipients = [{"emailAddress": a} for a in (detail.get("mail") or {}).get("destination")
                      or [] if isinstance(a, str)]
    else:
        return []
    return [(r["emailAddress"].strip().lower(), reason)
            for r in recipients if isinstance(r, dict) and r.get("emailAddress")]
