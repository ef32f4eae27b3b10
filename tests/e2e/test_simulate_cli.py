"""`dialogue simulate` as a user runs it: a command in a shell, an events file, an activity
folder; one JSON effect per line with `--output jsonl`, a readable timeline without it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import EXAMPLES, ROOT

TWO_PHASES = {
    "schema_version": 1, "id": "two-phases", "name": "Welcome, then a reminder a day later",
    "time_zone": "Europe/Paris", "elements": [
        {"id": "registered", "type": "registers", "next": "file"},
        {"id": "file", "type": "add_to_segment", "segment": "eligible-20", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "FIRST-ORDER-10", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "first-order-10",
         "send_immediately": True, "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 1, "unit": "days", "next": "unfile"},
        {"id": "unfile", "type": "remove_from_segment", "segment": "eligible-20",
         "next": "reminder"},
        {"id": "reminder", "type": "send_message", "channel": "sms",
         "template": "weekend-sale"}]}

REGISTERED = {
    "version": "0", "id": "e-1", "source": "shop", "detail-type": "CustomerRegistered",
    "time": "2027-01-04T10:00:00Z",
    "detail": {"event_id": "e-1", "customer_id": "zoe", "occurred_at": "2027-01-04T10:00:00Z",
               "profile": {"first_name": "Zoé", "email": "zoe@example.com",
                           "phone": "+33612345678", "country": "FR"},
               "consent": {"email": True, "sms": True}}}


def command(tmp: Path, *extra: str) -> list[str]:
    """The command line on a folder of its own: the activity, the segment and templates it uses,
    one event."""
    for folder in ("activities", "segments", "templates"):
        (tmp / folder).mkdir()
    (tmp / "activities" / "two-phases.json").write_text(json.dumps(TWO_PHASES))
    for name in ("segments/eligible-20", "templates/first-order-10", "templates/weekend-sale"):
        (tmp / f"{name}.json").write_text((EXAMPLES / f"{name}.json").read_text())
    (tmp / "events.jsonl").write_text(json.dumps(REGISTERED) + "\n")
    return [sys.executable, "-m", "dialogue.local.cli", "simulate",
            "--activities", str(tmp / "activities"), "--segments", str(tmp / "segments"),
            "--templates", str(tmp / "templates"), "--events", str(tmp / "events.jsonl"),
            "--from", "2027-01-04", "--days", "2", *extra]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Both outputs, the two commands run side by side (each starts its own embedded AWS); the
    jsonl run also writes where its time went (`--timings`)."""
    timings = tmp_path_factory.mktemp("timings") / "timings.json"
    runs = {kind: subprocess.Popen(command(tmp_path_factory.mktemp(kind), *extra), cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for kind, extra in (("jsonl", ("--output", "jsonl", "--timings", str(timings))),
                                ("timeline", ()))}
    out = {}
    for kind, run in runs.items():
        stdout, stderr = run.communicate(timeout=180)
        assert run.returncode == 0, stderr[-3000:]
        out[kind] = stdout
    out["timings"] = timings.read_text()
    return out


@pytest.fixture
def jsonl(outputs: dict[str, str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in outputs["jsonl"].splitlines() if line.strip()]


def test_jsonl_prints_one_effect_per_line_in_time_order(jsonl: list[dict[str, object]]):
    assert all(isinstance(row, dict) for row in jsonl)
    times = [datetime.fromisoformat(str(row["at"]).replace("Z", "+00:00")) for row in jsonl]
    assert times == sorted(times)
    for row in jsonl:
        assert {"at", "customer", "activity", "element", "effect"} <= row.keys(), row


def test_jsonl_has_each_phase_and_each_kind_of_effect_with_its_keys(
        jsonl: list[dict[str, object]]):
    mine = [r for r in jsonl if r["activity"] == "two-phases"]
    assert [(r["customer"], r["effect"], r["element"]) for r in mine] == [
        ("customer:zoe", "coupon", "coupon"), ("customer:zoe", "message", "mail"),
        ("customer:zoe", "segment_added", "file"),
        ("customer:zoe", "message", "reminder"), ("customer:zoe", "segment_removed", "unfile"),
        (None, "counted", "@exit:completed")]  # the run's end, with the controls' counts
    by_element = {r["element"]: r for r in mine}
    assert (by_element["mail"]["channel"], by_element["mail"]["template"]) == (
        "email", "first-order-10")
    assert (by_element["reminder"]["channel"], by_element["reminder"]["template"]) == (
        "sms", "weekend-sale")
    assert by_element["coupon"]["promotion"] == "FIRST-ORDER-10"
    assert by_element["file"]["segment"] == by_element["unfile"]["segment"] == "eligible-20"
    # Phase one on the event (its e-mail sent at once), phase two when the day's wait is over
    # (its SMS held for the next morning's send time, after the two simulated days).
    assert str(by_element["mail"]["at"]).startswith("2027-01-04T10:00")
    assert by_element["mail"]["status"] == "sent"
    assert str(by_element["unfile"]["at"]).startswith("2027-01-05T10:00")
    assert str(by_element["reminder"]["at"]).startswith("2027-01-05T10:00")
    assert by_element["reminder"]["status"] == "scheduled"


def test_without_output_it_prints_a_readable_timeline(outputs: dict[str, str]):
    lines = outputs["timeline"].splitlines()
    monday = lines.index("Monday 04 January 2027")
    tuesday = lines.index("Tuesday 05 January 2027")
    assert monday < tuesday
    first_day = "\n".join(lines[monday:tuesday])
    assert "customer:zoe" in first_day and "coupon FIRST-ORDER-10" in first_day
    assert "email 'first-order-10'" in first_day and "added eligible-20" in first_day
    second_day = "\n".join(lines[tuesday:])
    assert "sms 'weekend-sale'" in second_day and "removed eligible-20" in second_day
    assert "two-phases/reminder" in second_day
    with pytest.raises(ValueError):
        json.loads(lines[monday + 1])  # not JSON


def test_every_jsonl_row_follows_the_documented_schema(jsonl: list[dict[str, object]]):
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "docs/schema/simulate-row.schema.json").read_text())
    validator = Draft202012Validator(schema)
    assert jsonl, "no rows"
    for row in jsonl:
        assert [e.message for e in validator.iter_errors(row)] == [], row


def test_timings_say_where_the_run_went_by_phase_and_function(outputs: dict[str, str]):
    """`--timings`: the phases a marketer's run went through (the registration published and
    delivered, two daily checks, the day's wait, the send times) and the functions they ran,
    each with its seconds; the phases fit inside the whole simulation."""
    timings = json.loads(outputs["timings"])
    for phase in ("publishing", "events delivered", "daily checks", "waits", "sends",
                  "simulation", "readback"):
        assert timings[phase]["calls"] >= 1 and timings[phase]["wall"] > 0, phase
    assert timings["daily checks"]["calls"] == 2  # two simulated days
    assert timings["function OnEventFunction"]["calls"] >= 1
    assert timings["function SendMessageFunction"]["calls"] >= 2  # the e-mail and the SMS
    phases = sum(timings[p]["wall"] for p in ("publishing", "events delivered", "daily checks",
                                              "waits", "sends", "release lookups"))
    assert phases <= timings["simulation"]["wall"] + 0.01
