"""The validation example of docs/activities.md is what `dialogue validate` prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dialogue.local.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "validate-example"


def test_the_documented_validation_output_is_the_tools(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    doc = (ROOT / "docs" / "activities.md").read_text()
    shown = re.search(r"reports every problem as \*file : JSON path : reason\*:\n\n```text\n"
                      r"(.*?)```", doc, re.S)
    assert shown is not None
    monkeypatch.chdir(FIXTURE)

    status = main(["validate", "activities/bad-04.json", "activities/bad-10.json",
                   "--segments", str(ROOT / "examples" / "segments")])

    out = capsys.readouterr()
    assert status == 1
    assert out.out + out.err == shown.group(1)
