"""The examples do what their names and descriptions say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dialogue.model.activity import Activity
from dialogue.model.effects import SegmentAdded

from tests.unit.test_decide import order, play

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def big_spenders() -> Activity:
    raw = json.loads((EXAMPLES / "activities" / "07-big-spenders.json").read_text())
    return Activity.model_validate(raw)


@pytest.mark.parametrize(("second", "added"), [("400", True), ("399.99", False), ("500", True)])
def test_big_spenders_adds_a_customer_at_1000_euros_or_more(second: str, added: bool):
    # "customers whose orders add up to 1,000 € or more": exactly 1,000 € is in
    first, then = play(big_spenders(), order("o-1", "600"), order("o-2", second))

    assert not any(isinstance(e, SegmentAdded) for e in first.effects)
    joined = [e.segment for e in then.effects if isinstance(e, SegmentAdded)]
    assert joined == (["big-spenders"] if added else [])


def test_the_big_spenders_texts_say_1000_euros_or_more():
    activity = big_spenders()
    segment = json.loads((EXAMPLES / "segments" / "big-spenders.json").read_text())
    assert "1,000 € or more" in activity.name + (activity.description or "")
    assert "1,000 € or more" in segment["description"]


@pytest.mark.parametrize(("value", "text", "matches"), [
    ("Rossignol", "SKIS ROSSIGNOL", True),  # case does not matter (docs/activities.md)
    ("Straße", "STRASSE", True),  # case-folded, not only lower-cased
    ("Rossignol", "Rossignól", False),  # accents are not folded
    ("creme", "crème", False),
])
def test_text_matches_ignore_case_not_accents(value: str, text: str, matches: bool):
    from dialogue.model.matching import TextMatch

    assert TextMatch(rule="contains", value=value).matches(text) is matches
