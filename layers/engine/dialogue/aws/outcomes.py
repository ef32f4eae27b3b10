"""MessageSent on the bus, put by send_message once the provider has taken the message.

(MessageSuppressed, CouponIssued and the segment events come from the table's stream through
DispatchFunction: they are final rows. A send is only final once the provider answered, after
the one write.) Every detail is a model of dialogue.model.outcomes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialogue.model.effects import MessageQueued
from dialogue.model.outcomes import MessageSent


class EventBridgeOutcomes:
    def __init__(self, client: Any, bus: str, source: str = "dialogue"):
        self._events, self._bus, self._source = client, bus, source

    def sent(self, job: MessageQueued, provider: str, at: datetime) -> None:
        detail = MessageSent(key=job.key, customer=job.subject, activity_id=job.activity_id,
                             element_id=job.element_id, channel=job.channel,
                             template=job.template, provider=provider, sent_at=at)
        result = self._events.put_events(Entries=[{
            "EventBusName": self._bus, "Source": self._source, "DetailType": "MessageSent",
            "Detail": detail.model_dump_json(exclude_none=True)}])
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"MessageSent not accepted by the bus: {result['Entries']}")
