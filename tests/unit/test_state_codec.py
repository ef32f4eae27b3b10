"""The stored form of a state: compressed with a preset dictionary, and readable whatever it was
written with."""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dialogue.aws import state_codec
from dialogue.model.customer import CustomerState, Journey, Occurrence, OrderRecord

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


def shopper() -> CustomerState:
    state = CustomerState(subject="customer:c42", registered_at=AT - timedelta(days=90),
                          order_count=1, total_spent=Decimal("59.90"))
    state.orders.append(OrderRecord(order_id="o-1", at=AT - timedelta(days=9),
                                    total=Decimal("59.90"), lines=[]))
    for n in range(30):
        state.behaviour.append(Occurrence(at=AT - timedelta(hours=30 - n), kind="ProductViewed",
                                          fields={"product_id": f"p{n}"}, tags=["Ski"]))
        state.remember(str(uuid.UUID(int=n)), AT - timedelta(hours=30 - n))
    state.journeys["welcome"] = Journey(entries=1, last_entered_at=AT)
    return state


def test_a_state_reads_back_equal_with_its_version():
    state = shopper()

    back = state_codec.decode(state_codec.encode(state), version=7)

    assert back.model_dump(exclude={"version"}) == state.model_dump(exclude={"version"})
    assert back.version == 7


def test_the_dictionary_makes_a_state_smaller_than_zlib_alone():
    state = shopper()
    plain = zlib.compress(state.model_dump_json(exclude={"version"}).encode(), 6)

    assert len(state_codec.encode(state)) < 0.8 * len(plain)


def test_a_state_written_without_a_dictionary_still_reads():
    state = shopper()
    old = zlib.compress(state.model_dump_json(exclude={"version"}).encode(), 6)

    assert state_codec.decode(old) == state_codec.decode(state_codec.encode(state))


# A state as the first stored form wrote it (zlib, no dictionary): event ids on every order and
# occurrence, `processed` the list of the last ids, a late search appended last.
FIRST_FORMAT = {
    "subject": "customer:c7", "registered_at": "2026-01-10T09:00:00Z", "order_count": 2,
    "total_spent": "80.00",
    "orders": [
        {"order_id": "o-2", "event_id": "e-o2", "at": "2026-03-01T10:00:00.250000Z",
         "total": "50.00", "lines": [], "promotion_codes": []},
        {"order_id": "o-1", "event_id": "e-o1", "at": "2026-02-01T10:00:00Z", "total": "30.00",
         "lines": [], "promotion_codes": []}],
    "behaviour": [
        {"event_id": "e-v1", "at": "2026-03-02T08:00:00Z", "kind": "ProductViewed",
         "fields": {"product_id": "p1", "manufacturer": ""}, "tags": ["Ski"]},
        {"event_id": "e-s1", "at": "2026-03-01T07:00:00Z", "kind": "SearchPerformed",
         "fields": {"query": "ski"}, "tags": []}],
    "processed": ["e-o1", "e-o2", "e-v1", "e-s1"],
}


def test_a_state_of_the_first_stored_form_reads_migrated():
    blob = zlib.compress(json.dumps(FIRST_FORMAT).encode(), 6)

    state = state_codec.decode(blob, version=3)

    assert state.has_processed("e-v1") and state.has_processed("e-o1")
    assert not state.has_processed("e-new")
    assert [o.order_id for o in state.orders] == ["o-1", "o-2"]  # oldest first
    assert [o.kind for o in state.behaviour] == ["SearchPerformed", "ProductViewed"]
    assert state.version == 3 and state.total_spent == Decimal("80.00")
    again = state_codec.decode(state_codec.encode(state))  # written back in the new form
    assert again.model_dump() == {**state.model_dump(), "version": 0,
                                  "orders": again.model_dump()["orders"]}
    assert again.orders[1].at == datetime(2026, 3, 1, 10, tzinfo=UTC)  # to the second


def test_a_state_written_with_an_unknown_dictionary_is_refused_with_its_name():
    packer = zlib.compressobj(6, zdict=b'{"subject":"a dictionary nobody registered"}')
    blob = packer.compress(b'{"subject":"customer:c1"}') + packer.flush()

    with pytest.raises(ValueError, match="unknown preset dictionary 0x"):
        state_codec.decode(blob)


def test_the_registered_dictionaries_never_change():
    """States on disk need the exact bytes they were written with: add a dictionary, never
    edit one (this is its Adler-32, the name its streams carry)."""
    assert sorted(state_codec.DICTIONARIES) == [zlib.adler32(state_codec.DICTIONARY_V1)]
    assert zlib.adler32(state_codec.DICTIONARY_V1) == DICTIONARY_V1_NAME


DICTIONARY_V1_NAME = 0x4CB36EAA
