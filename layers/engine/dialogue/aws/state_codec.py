"""The stored form of a customer state: JSON without its default values, zlib-compressed with a
preset dictionary.

The daily check scans every state once a day and pays a read unit per 8 KB of them (eventually
consistent), every event writes one; a state is a few KB, too short for zlib to learn the
document's own vocabulary (key names, detail-types, ISO times) before it ends. A preset
dictionary holding that vocabulary makes the first occurrence of each as cheap as a repeat.

A stream names its dictionary (zlib's DICTID: the Adler-32 of the dictionary) in its header, so
a new dictionary is added under a new name and states written with an older one still read.
NEVER edit a dictionary once states may have been written with it: add one, and make it
`CURRENT`.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from dialogue.model.customer import CustomerState, event_digest

# Version 1: a state with one of each record, as `encode` writes it, its values left out.
# The last bytes are the cheapest to refer to: the history records come last.
DICTIONARY_V1 = (
    b'{"subject":"customer:","profile":{"email":"@gmail.com","phone":"+33","first_name":"",'
    b'"last_name":"","birthday":"19","country":"FR","city":"","language":"fr","attributes":'
    b'{}},"consent":{"email":true,"sms":true,"tracking":false},"registered_at":"2026-'
    b'"segments":{"":{"since":"2026-","until":"2026-","by":""}},"segment_history":[{"segment":'
    b'"","change":"added","at":"2026-","by":"rule","element":""},{"segment":"","change":'
    b'"removed","at":"2026-","by":"","element":""}],"journeys":{"":{"entries":1,'
    b'"last_entered_at":"2026-","waiting":[{"entry":1,"element":"wait","since":"2026-",'
    b'"due_at":"2026-"}]}},"last_daily":"2026-","processed":{"":739000,"":739000}}'
    b'"cart":{"cart_id":"","updated_at":"2026-","lines":[{"product_id":"","categories":[""],'
    b'"manufacturer":"","quantity":1,"value":"10.00","discounted":true}]},'
    b'"orders":[{"order_id":"","at":1790000000,"total":"10.00","lines":[{'
    b'"product_id":"","categories":[""],"manufacturer":"","quantity":1,"value":"10.00",'
    b'"discounted":true},{"product_id":"","categories":["",""],"manufacturer":"","quantity":2,'
    b'"value":"10.00"}],"promotion_codes":[""]}],"order_count":1,"total_spent":"10.00",'
    b'"behaviour":[{"at":1790000000,"kind":"SocialParticipation","fields":{"kind":"review",'
    b'"product_id":""}},{"at":1790000000,"kind":"CartAbandoned","fields":{"cart_id":"",'
    b'"value":"10.00","items":"1"}},{"at":1790000000,"kind":"RecommendationClicked","fields":'
    b'{"product_id":""}},{"at":1790000000,"kind":"CampaignViewed","fields":{"campaign":""}},'
    b'{"at":1790000000,"kind":"EmailClicked","fields":{"campaign":"","template":"","link":'
    b'"https://"}},{"at":1790000000,"kind":"EmailOpened","fields":{"campaign":"","template":'
    b'""}},{"at":1790000000,"kind":"SearchPerformed","fields":{"query":""}},{"at":1790000000,'
    b'"kind":"PageVisited","fields":{"url":"https://"}},{"at":1790000000,"kind":'
    b'"CategoryViewed","fields":{"category":""},"tags":["",""]},{"at":1790000000,"kind":'
    b'"ProductViewed","fields":{"product_id":"","manufacturer":""},"tags":["",""]},'
    b'{"at":1790000000,"kind":"ProductViewed","fields":{"product_id":"'
)
DICTIONARIES = {zlib.adler32(DICTIONARY_V1): DICTIONARY_V1}
CURRENT = DICTIONARY_V1
LEVEL = 6
_FDICT = 0x20  # the header's flag: a preset dictionary's Adler-32 follows


def encode(state: CustomerState) -> bytes:
    """The compressed document (`version` is stored beside it, as the write's condition)."""
    doc = state.model_dump_json(exclude={"version"}, exclude_defaults=True).encode()
    packer = zlib.compressobj(LEVEL, zdict=CURRENT)
    return packer.compress(doc) + packer.flush()


def document(blob: bytes) -> bytes:
    """The JSON of a stored state, whichever dictionary (or none) it was written with."""
    if len(blob) < 6 or not blob[1] & _FDICT:
        return zlib.decompress(blob)
    name = int.from_bytes(blob[2:6], "big")
    dictionary = DICTIONARIES.get(name)
    if dictionary is None:
        raise ValueError(f"state written with an unknown preset dictionary {name:#010x}")
    unpacker = zlib.decompressobj(zdict=dictionary)
    return unpacker.decompress(blob) + unpacker.flush()


def decode(blob: bytes, version: int = 0) -> CustomerState:
    if len(blob) >= 2 and not blob[1] & _FDICT:  # written before this codec: migrated on read
        state = _from_first_format(json.loads(zlib.decompress(blob)))
    else:
        state = CustomerState.model_validate_json(document(blob))
    state.version = version
    return state


def _from_first_format(doc: dict[str, Any]) -> CustomerState:
    """The first stored form: every order and occurrence kept its event id, `processed` was the
    list of the last ids, and a late event was appended last. Its ids are remembered as applied
    today (kept PROCESSED_FOR from now: never shorter than before), its histories put in time
    order."""
    for record in [*doc.get("orders", []), *doc.get("behaviour", [])]:
        record.pop("event_id", None)
    ids = doc.get("processed")
    if isinstance(ids, list):
        today = datetime.now(UTC).toordinal()
        doc["processed"] = {event_digest(str(i)): today for i in ids}
    state = CustomerState.model_validate(doc)
    state.orders.sort(key=_AT)
    state.behaviour.sort(key=_AT)
    return state


_AT = attrgetter("at")
