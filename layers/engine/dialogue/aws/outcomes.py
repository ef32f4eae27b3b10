"""MessageSent on the bus, put by send_message once the provider has taken the message.

(MessageSuppressed and CouponIssued come from the table's stream through OutcomePipe: they are
final rows. A send is only final once the provider answered, after the one write.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dialogue.model.effects import MessageQueued


class EventBridgeOutcomes:
    def __init__(self, client: Any, bus: str, source: str = "dialogue"):
        self._events, self._bus, self._source = client, bus, source

    def sent(self, job: MessageQueued, provider: str, at: datetime) -> None:
        detail = {"key": job.key, "customer": job.subject, "activity_id": job.activity_id,
                  "element_id": job.element_id, "channel": job.channel,
                  "template": job.template, "provider": provider, "sent_at": at.isoformat()}
        result = self._events.put_events(Entries=[{
            "EventBusName": self._bus, "Source": self._source, "DetailType": "MessageSent",
            "Detail": json.dumps(detail)}])
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"MessageSent not accepted by the bus: {result['Entries']}")
