"""The stored form of a state: compressed with a preset dictionary, and readable whatever it was
written with."""

from __future__ import annotations

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
