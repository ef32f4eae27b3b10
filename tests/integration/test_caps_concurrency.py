"""A frequency cap of 1 holds when two activities send to one customer at the same instant in
two concurrent decisions: the state (with its send log) is written conditionally on its version,
so the second write fails and, decided again on the new state, the second message is capped."""

from __future__ import annotations

from typing import Any

import pytest
from dialogue.aws.dynamo import DynamoCustomerStore
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import decide
from dialogue.model.effects import ElementReached, MessageQueued
from dialogue.ports import Conflict

from tests.unit.conftest import NOW, activity, event

CAP = {"limits": [{"messages": 1, "per": {"unit": "days", "amount": 1}}]}


def mailing(ident: str, name: str) -> Any:
    return activity({"id": "on", "type": "wait_for_event", "event": name, "next": "m"},
                    {"id": "m", "type": "send_message", "channel": "email",
                     "template": "welcome", "send_immediately": True},
                    id=ident, repeatable=True, frequency_cap=CAP)


def jobs(db: Any) -> list[str]:
    return sorted(i["activity_id"]["S"] for i in db.scan(TableName="t")["Items"]
                  if i.get("kind", {}).get("S") == "job")


def test_two_concurrent_decisions_never_both_pass_a_cap_of_1(db: Any) -> None:
    store = DynamoCustomerStore(db, "t", segment_shards=4)
    catalog = Catalog([mailing("a", "Viewed"), mailing("b", "Liked")])
    viewed = event("CustomEvent", name="Viewed", parameters={})
    liked = event("CustomEvent", name="Liked", parameters={})
    store.commit(store.load("customer:c1"), [])  # the customer exists (version 1)

    # Two workers read the same version at the same instant; each decides one event.
    first, second = store.load("customer:c1"), store.load("customer:c1")
    one = decide(first, viewed, catalog, NOW)
    two = decide(second, liked, catalog, NOW)
    assert [len([e for e in d.effects if isinstance(e, MessageQueued)]) for d in (one, two)] \
        == [1, 1]  # each alone passes the cap
    store.commit(one.state, one.effects)
    with pytest.raises(Conflict):
        store.commit(two.state, two.effects)
    assert jobs(db) == ["a"]  # the losing write left no message behind

    # As the event service does on a conflict: read again, decide again.
    again = decide(store.load("customer:c1"), liked, catalog, NOW)
    [capped] = [e for e in again.effects if isinstance(e, MessageQueued)]
    assert (capped.capped, capped.not_before) == ("1 per 1 days", None)  # to be suppressed
    assert [e.element_id for e in again.effects if isinstance(e, ElementReached)
            and e.element_id.startswith("@")] == ["@capped:1 per 1 days", "@exit:completed"]
    store.commit(again.state, again.effects)
    assert jobs(db) == ["a", "b"]  # b's row only says why it was not sent
    assert store.load("customer:c1").sends == {"email": [int(NOW.timestamp())]}
