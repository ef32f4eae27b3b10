"""on_event reads the event inside the events queue's message, whatever reached the queue."""

import json

from dialogue.model.routing import event_of_message

EVENT = {"version": "0", "id": "e-1", "source": "shop", "detail-type": "OrderPlaced",
         "detail": {"customer_id": "lea"}}


def test_a_wrapped_event_is_unwrapped() -> None:
    body = json.dumps({"group": "c#lea", "event": EVENT})
    assert json.loads(event_of_message(body)) == EVENT


def test_anything_else_is_left_for_the_event_checks_to_judge() -> None:
    for body in (json.dumps(EVENT), "not json", "[1]", json.dumps({"group": "x"}),
                 json.dumps({"group": "x", "event": {}, "more": 1})):
        assert event_of_message(body) == body
