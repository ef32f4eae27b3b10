"""Hostile documents: each is reported as *file : where : reason* and skipped, never a crash, and
every number that feeds date arithmetic is bounded where it is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dialogue.engine.catalog import (
    BASE_WRITES,
    MAX_EVENT_WRITES,
    MAX_RELAYED_ROWS,
    writes_by_event,
)
from dialogue.engine.checks import Problem, load_catalog
from dialogue.local import cli
from dialogue.model.activity import Activity
from dialogue.model.base import MAX_DEPTH

REGISTERS = {"id": "start", "type": "registers", "next": "mail"}
MAIL = {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"}
TEMPLATE = {"id": "welcome", "channel": "email", "subject": "Hello",
            "text": "Hello {{ customer.first_name }}"}


def activity(*elements: dict[str, Any], ident: str = "act", **props: Any) -> dict[str, Any]:
    return {"id": ident, "name": "Test activity", **props, "elements": list(elements)}


GOOD = activity(REGISTERS, MAIL, ident="good")


def nested(levels: int) -> str:
    """A document whose `elements` hold `levels` lists, one inside the other."""
    return '{"id": "deep", "name": "Deep", "elements": ' + "[" * levels + "]" * levels + "}"


def deep_rule(levels: int) -> str:
    leaf = '{"field": "orders.count", "op": "greater", "value": 1}'
    return ('{"id": "deep", "name": "Deep", "kind": "rule", "rule": '
            + '{"all": [' * levels + leaf + "]}" * levels + "}")


def problems_of(activities: list[tuple[str, str]] = (),  # type: ignore[assignment]
                segments: list[tuple[str, str]] = (),  # type: ignore[assignment]
                templates: list[tuple[str, str]] = ()) -> list[Problem]:  # type: ignore[assignment]
    _, problems = load_catalog(activities, segments, templates)
    return problems


def only(problems: list[Problem], file: str) -> Problem:
    assert [p.file for p in problems] == [file], [str(p) for p in problems]
    return problems[0]


# --- nesting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [1_000, 100_000])
def test_an_activity_nested_a_thousand_levels_deep_is_reported_and_the_others_load(levels: int):
    catalog, problems = load_catalog([("deep.json", nested(levels)),
                                      ("good.json", json.dumps(GOOD))], [])
    problem = only(problems, "deep.json")
    assert problem.path == "line 1 column 75"  # where the 33rd level opens
    assert problem.reason == f"nested deeper than {MAX_DEPTH} levels of objects and lists"
    assert list(catalog.activities) == ["good"]


def test_brackets_inside_strings_do_not_count_as_nesting():
    label = "[" * 1_000 + '\\"{' * 10
    doc = activity({**REGISTERS, "label": label}, MAIL, ident="brackets")
    catalog, problems = load_catalog([("b.json", json.dumps(doc))], [])
    assert problems == [] and list(catalog.activities) == ["brackets"]


def test_nesting_up_to_the_bound_is_read_by_the_model():
    problems = problems_of([("deep.json", nested(MAX_DEPTH - 1))])
    assert problems and all("nested deeper" not in p.reason for p in problems)


def test_a_segment_rule_nested_a_thousand_levels_deep_is_reported_and_the_others_load():
    vip = {"id": "vip", "name": "VIP"}
    catalog, problems = load_catalog([], [("deep.json", deep_rule(1_000)),
                                          ("vip.json", json.dumps(vip))])
    problem = only(problems, "deep.json")
    assert problem.reason.startswith("nested deeper than")
    assert list(catalog.segments) == ["vip"]


def test_a_template_nested_a_thousand_levels_deep_is_reported_and_the_others_load():
    deep = '{"id": "deep", "channel": "email", "subject": ' + "[" * 1_000 + "]" * 1_000 + "}"
    catalog, problems = load_catalog([], [], [("deep.json", deep),
                                              ("welcome.json", json.dumps(TEMPLATE))])
    assert only(problems, "deep.json").reason.startswith("nested deeper than")
    assert list(catalog.templates) == ["welcome"]


def test_a_number_too_long_to_read_is_invalid_json_not_a_crash():
    text = json.dumps(GOOD).replace('"mail"}', '"mail", "x": 1' + "0" * 5_000 + "}", 1)
    problem = only(problems_of([("huge.json", text)]), "huge.json")
    assert problem.path == "$" and problem.reason.startswith("invalid JSON")


def test_validate_names_each_deep_file_instead_of_a_traceback(tmp_path: Path, capsys):
    for folder in ("activities", "segments", "templates"):
        (tmp_path / folder).mkdir()
    (tmp_path / "activities" / "deep.json").write_text(nested(1_000))
    (tmp_path / "activities" / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / "segments" / "deep.json").write_text(deep_rule(1_000))
    (tmp_path / "templates" / "deep.json").write_text("[" * 1_000 + "]" * 1_000)
    (tmp_path / "templates" / "welcome.json").write_text(json.dumps(TEMPLATE))

    code = cli.main(["validate", str(tmp_path / "activities")])

    out, err = capsys.readouterr()
    assert code == 1
    reason = f"nested deeper than {MAX_DEPTH} levels of objects and lists"
    assert f"{tmp_path}/activities/deep.json : line 1 column 75 : {reason}" in out
    assert f"{tmp_path}/segments/deep.json : line 1 column " in out
    assert f"{tmp_path}/templates/deep.json : line 1 column 33 : {reason}" in out
    assert "1 activities valid, 3 files with problems" in err


def test_validate_reads_a_file_that_is_not_utf8_and_names_it(tmp_path: Path, capsys):
    (tmp_path / "activities").mkdir()
    (tmp_path / "activities" / "latin1.json").write_bytes(b'{"id": "\xe9t\xe9"}')
    code = cli.main(["validate", str(tmp_path / "activities")])
    out, _ = capsys.readouterr()
    assert code == 1 and f"{tmp_path}/activities/latin1.json : $.id : " in out


# --- bounds on what feeds date arithmetic -----------------------------------------------------
WAIT_FROM_MAIL = {**MAIL, "next": "pause"}


@pytest.mark.parametrize(("amount", "unit", "reason"), [
    (3_000_000, "days", "at most 3,650 days (ten years)"),
    (1_000_000, "months", "at most 120 months (ten years)"),
    (521, "weeks", "at most 520 weeks (ten years)"),
    (87_601, "hours", "at most 87,600 hours (ten years)"),
    (5_256_001, "minutes", "Input should be less than or equal to 5256000"),
])
def test_a_wait_longer_than_ten_years_is_refused_at_its_amount(amount: int, unit: str,
                                                               reason: str):
    doc = activity(REGISTERS, WAIT_FROM_MAIL,
                   {"id": "pause", "type": "wait", "amount": amount, "unit": unit, "next": "end"},
                   {**MAIL, "id": "end"})
    problem = only(problems_of([("wait.json", json.dumps(doc))]), "wait.json")
    assert (problem.path, problem.reason) == ("$.elements[2].amount", reason)


def test_ten_years_in_any_unit_is_accepted():
    for amount, unit in ((3_650, "days"), (120, "months"), (520, "weeks"), (87_600, "hours")):
        doc = activity(REGISTERS, WAIT_FROM_MAIL,
                       {"id": "pause", "type": "wait", "amount": amount, "unit": unit,
                        "next": "end"}, {**MAIL, "id": "end"})
        assert problems_of([("wait.json", json.dumps(doc))]) == []


def test_a_timeout_of_a_million_months_is_refused_at_its_amount():
    doc = activity(REGISTERS, {**MAIL, "next": "order"},
                   {"id": "order", "type": "places_order",
                    "timeout": {"amount": 1_000_000, "unit": "months"}})
    problem = only(problems_of([("t.json", json.dumps(doc))]), "t.json")
    assert (problem.path, problem.reason) == ("$.elements[2].timeout.amount",
                                              "at most 120 months (ten years)")


@pytest.mark.parametrize(("props", "path", "reason"), [
    ({"end_date": "9999-12-31"}, "$.end_date",
     "Input should be less than or equal to 2999-12-31"),
    ({"start_date": "0001-01-01"}, "$.start_date",
     "Input should be greater than or equal to 1900-01-01"),
])
def test_activity_dates_are_bounded(props: dict[str, Any], path: str, reason: str):
    doc = activity(REGISTERS, MAIL, **props)
    problem = only(problems_of([("d.json", json.dumps(doc))]), "d.json")
    assert (problem.path, problem.reason) == (path, reason)


def test_a_time_frame_day_is_bounded():
    target = {"id": "t", "type": "target", "next": "mail", "conditions": [
        {"type": "purchase_history", "compare": {"value": 1},
         "time_frame": {"kind": "on", "day": "9999-12-31"}}]}
    doc = activity({**REGISTERS, "next": "t"}, target, MAIL)
    problem = only(problems_of([("f.json", json.dumps(doc))]), "f.json")
    assert problem.path == "$.elements[1].conditions[0].time_frame.day"


@pytest.mark.parametrize(("condition", "reason"), [
    ({"field": "orders.last", "op": "before", "value": "9999-12-31"},
     "a day between 1900-01-01 and 2999-12-31, not '9999-12-31'"),
    ({"field": "birthday", "op": "between", "value": ["0001-01-01", "2000-01-01"]},
     "a day between 1900-01-01 and 2999-12-31, not '0001-01-01'"),
    ({"field": "orders.last", "op": "in_last_days", "value": 36_501},
     "'in_last_days' takes a whole number of days, 1 to 36,500"),
])
def test_segment_days_are_bounded(condition: dict[str, Any], reason: str):
    seg = {"id": "s", "name": "S", "kind": "rule", "rule": condition}
    problem = only(problems_of([], [("s.json", json.dumps(seg))]), "s.json")
    assert problem.reason == reason


# --- what one event can write -----------------------------------------------------------------
def thanks(n: int) -> dict[str, Any]:
    return activity({"id": "ordered", "type": "places_order", "next": "coupon"},
                    {"id": "coupon", "type": "issue_coupon", "promotion": "T", "next": "mail"},
                    MAIL, ident=f"thanks-{n:03}", repeatable=True)


def test_the_writes_an_event_can_need_are_counted_per_kind_of_event():
    doc = activity(
        {"id": "ordered", "type": "places_order", "next": "split"},
        {"id": "split", "type": "branch", "mode": "all", "paths": [
            {"name": "a", "next": "add"}, {"name": "b", "next": "coupon"}]},
        {"id": "add", "type": "add_to_segment", "segment": "skiers", "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "T", "next": "pause"},
        {"id": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "again"},
        {"id": "again", "type": "places_order", "next": "go",
         "timeout": {"amount": 2, "unit": "days"}},
        {"id": "go", "type": "wait_for_event", "event": "Go", "next": "mail"}, MAIL)
    act = Activity.model_validate(doc)
    # Entering: a counter row, the member and its statistics, the coupon (once), the timer;
    # the later order: the park at `go` (no timeout); "Go": the mail.
    assert writes_by_event(act) == {"OrderPlaced": 1 + 2 + 1 + 1 + 0,
                                    "CustomEvent 'Go'": 1 + 1}


def waits(n: int) -> dict[str, Any]:
    """An order activity whose five paths park at five waits: six writes, none relayed."""
    paths = [{"name": f"p{i}", "next": f"w{i}"} for i in range(5)]
    return activity({"id": "ordered", "type": "places_order", "next": "split"},
                    {"id": "split", "type": "branch", "mode": "all", "paths": paths},
                    *({"id": f"w{i}", "type": "wait", "amount": 1, "unit": "days",
                       "next": "mail"} for i in range(5)),
                    MAIL, ident=f"waits-{n:03}", repeatable=True)


def test_activities_that_would_take_one_event_beyond_the_write_bound_are_left_out():
    per_activity = 6  # a counter row and five timers
    fits = (MAX_EVENT_WRITES - BASE_WRITES) // per_activity
    docs = [(f"{n:03}.json", json.dumps(waits(n))) for n in range(fits + 2)]
    templates = [("welcome.json", json.dumps(TEMPLATE))]
    catalog, problems = load_catalog(docs, [], templates)

    assert len(catalog.activities) == fits
    assert [p.file for p in problems] == [f"{fits:03}.json", f"{fits + 1:03}.json"]
    assert problems[0].path == "$.elements"
    assert problems[0].reason.startswith(
        f"one OrderPlaced event could then need {BASE_WRITES + (fits + 1) * 6} writes, "
        f"more than {MAX_EVENT_WRITES}")


def test_more_relayed_rows_than_commit_with_the_state_are_refused_at_validation():
    fits = MAX_RELAYED_ROWS // 2  # a coupon and a message job each
    docs = [(f"{n:03}.json", json.dumps(thanks(n))) for n in range(fits + 1)]
    templates = [("welcome.json", json.dumps(TEMPLATE))]
    catalog, problems = load_catalog(docs, [], templates)

    assert len(catalog.activities) == fits
    assert [(p.file, p.path) for p in problems] == [(f"{fits:03}.json", "$.elements")]
    assert problems[0].reason.startswith(
        f"one OrderPlaced event could then need {(fits + 1) * 2} messages, coupons and segment "
        f"changes, more than the {MAX_RELAYED_ROWS} that commit")


def test_thirty_four_order_activities_with_a_coupon_and_a_mail_are_valid():
    docs = [(f"{n:03}.json", json.dumps(thanks(n))) for n in range(34)]
    catalog, problems = load_catalog(docs, [], [("welcome.json", json.dumps(TEMPLATE))])
    assert problems == [] and len(catalog.activities) == 34  # 104 writes: the store splits them
