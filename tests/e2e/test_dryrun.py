"""Dry runs: `dialogue simulate` also shows what the shop would hear, what was dead-lettered, the
counters; `--activity FILE` tries a candidate activity on the recorded events, sending nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import ROOT
from tests.e2e.test_simulate_cli import REGISTERED, command

CANDIDATE = {
    "schema_version": 1, "id": "candidate", "name": "A second welcome, tried first",
    "elements": [
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "sms", "template": "weekend-sale",
         "send_immediately": True}]}


def test_a_candidate_activity_shows_who_would_enter_and_what_they_would_get(tmp_path: Path):
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps(CANDIDATE))
    argv = command(tmp_path, "--activity", str(candidate), "--summary",
                   str(tmp_path / "summary.json"), "--quiet")
    broken = json.dumps(REGISTERED).replace('"customer_id": "zoe"', '"customer_id": ""')
    (tmp_path / "events.jsonl").write_text(json.dumps(REGISTERED) + "\n" + broken + "\n")
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "CANDIDATE candidate: 1 entries, 1 customers with effects" in out
    assert "customer:zoe" in out and "sms 'weekend-sale' sent" in out
    assert "OUTCOME EVENTS the shop would receive: " in out and "MessageSent" in out
    assert "DEAD-LETTERED: 1" in out
    assert run.stderr.count("\r") == 0  # no progress bar off a terminal
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["reached"]["candidate"] == {"registered": 1, "mail": 1, "@exit:completed": 1}
    assert summary["outcome_events"]["MessageSent"] >= 2  # the candidate's and two-phases'
    assert [d["event_id"] for d in summary["dead_lettered"]] == ["e-1"]


def test_a_broken_candidate_is_refused_before_anything_runs(tmp_path: Path):
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps({**CANDIDATE, "elements": CANDIDATE["elements"][:1]}))
    run = subprocess.run(command(tmp_path, "--activity", str(candidate)), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"--activity {candidate}" in run.stderr and "elements" in run.stderr
