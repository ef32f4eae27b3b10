"""The events queue's message: a shop event wrapped with its FIFO message group.

The identity rules write `{"group": "c#<customer_id>" | "g#<personalization_id>" | "none",
"event": <the EventBridge event>}` and EventsPipe takes the group from the body (a rule target's
MessageGroupId cannot be a path); on_event reads the event inside.
"""

from __future__ import annotations

import json


def event_of_message(body: str) -> str:
    """The EventBridge event a message carries: unwrapped, or the body itself when it is not a
    wrapped event (a redriven or hand-sent message), so the usual checks judge it."""
    try:
        message = json.loads(body)
    except ValueError:
        return body
    if isinstance(message, dict) and set(message) == {"group", "event"}:
        return json.dumps(message["event"])
    return body
