"""The rows of `simulate --output jsonl`: the docs' samples follow the JSON Schema tools rely on,
and the schema refuses rows that break it (the command's real output is checked against it in
tests/e2e/test_simulate_cli.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs/schema/simulate-row.schema.json").read_text())


def errors(row: dict[str, Any]) -> list[str]:
    return [e.message for e in Draft202012Validator(SCHEMA).iter_errors(row)]


def doc_rows() -> list[dict[str, Any]]:
    text = (ROOT / "docs/time.md").read_text()
    section = text[text.index("`--output jsonl` prints"):]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    return [json.loads(line) for line in block.group(1).splitlines() if line.strip()]


def test_the_schema_is_a_valid_json_schema():
    Draft202012Validator.check_schema(SCHEMA)


def test_the_docs_show_one_sample_per_effect_and_each_is_valid():
    rows = doc_rows()
    assert {r["effect"] for r in rows} == {"message", "coupon", "segment_added",
                                           "segment_removed"}
    assert any(r["effect"] == "message" and "reason" in r and r["status"] == "sent"
               for r in rows)
    for row in rows:
        assert errors(row) == [], row


@pytest.mark.parametrize("change", [
    {"effect": "parcel"},
    {"template": None},
    {"at": "2026-12-07 18:40"},
    {"code": "0O1I"},
    {"segment": "vip"},  # a message has no segment
])
def test_a_row_that_breaks_the_contract_is_refused(change: dict[str, Any]):
    message = {"at": "2026-12-07T18:40:00Z", "customer": "customer:c", "activity": "a",
               "element": "m", "effect": "message", "channel": "email", "template": "t",
               "status": "sent"}
    assert errors(message) == []
    row = {**message, **change}
    if "code" in change:
        row = {k: v for k, v in row.items() if k not in ("channel", "template", "status")}
        row.update(effect="coupon", promotion="P")
    assert errors(row) != []
