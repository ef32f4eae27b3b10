"""The embedded AWS answers this process's own requests in-process (local/inprocess.py), which
is what makes a dry run fast: a small `dialogue simulate` of the examples gives the same jsonl
as with every request over HTTP (issue 16: "a test compares a small run's jsonl with and
without the speed-ups").

Normalised: coupon codes only. They are drawn at random (`secrets`) on each run, HTTP or not;
every other value (times, customers, elements, statuses, segments, counts) must be equal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.conftest import EXAMPLES, ROOT


def simulate(transport: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dialogue.local.cli", "simulate", "--events",
         str(EXAMPLES / "events"), "--from", "2026-11-30", "--days", "3", "--output", "jsonl",
         "--quiet"], cwd=ROOT, env={**os.environ, "DIALOGUE_LOCAL_TRANSPORT": transport},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(run: subprocess.Popen[str]) -> list[dict[str, object]]:
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    out = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    for row in out:
        if row.get("effect") == "coupon":
            assert isinstance(row["code"], str) and row["code"]
            row["code"] = "<random>"
    return out


def test_a_small_simulation_gives_the_same_jsonl_in_process_and_over_http():
    runs = {transport: simulate(transport) for transport in ("inprocess", "http")}
    fast, http = rows(runs["inprocess"]), rows(runs["http"])
    effects = {(r.get("effect"), r.get("status")) for r in http}
    # the run is worth comparing: coupons, messages sent, both segment changes
    assert {("coupon", None), ("message", "sent"), ("segment_added", None),
            ("segment_removed", None)} <= effects
    assert fast == http
