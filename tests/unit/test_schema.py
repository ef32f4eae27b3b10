"""The committed JSON Schemas are what the models export: a format change is seen in review."""

import json
from pathlib import Path

import pytest
from dialogue.local.cli import schema

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schema"


@pytest.mark.parametrize("kind", ["activity", "segment", "event", "outcome"])
def test_committed_schema_matches_the_models(kind: str) -> None:
    committed = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    assert committed == schema(kind), f"run `make schema` and commit docs/schema/{kind}.schema.json"


def test_activity_schema_rejects_unknown_keys_for_editors() -> None:
    activity = schema("activity")
    assert activity["additionalProperties"] is False
    kinds = {d["properties"]["type"]["const"] for d in activity["$defs"].values()
             if "type" in d.get("properties", {}) and "const" in d["properties"]["type"]}
    assert {"registers", "places_order", "wait", "branch", "send_message", "segment"} <= kinds
