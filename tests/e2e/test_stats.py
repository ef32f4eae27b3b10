"""`dialogue stats activity`, the report and the live console on the simulated clock (issues 13
and 14): customers per element per shop day and in total, exits by reason, the messages the
controls held, skipped or capped with the reason, and the holdout beside the treated group."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialogue.engine import controls
from dialogue.engine.checks import load_catalog
from dialogue.local import console, insight
from dialogue.model.activity import Activity

from tests.e2e.conftest import EXAMPLES
from tests.e2e.test_controls import NURTURE
from tests.e2e.test_time import World, custom, orders, registers
from tests.e2e.test_why import dialogue

HELD_NURTURE = {**NURTURE, "id": "held-nurture", "holdout": {"percent": 50},
                "quiet_hours": {"start": "21:00", "end": "08:00", "then": "hold"}}
CAP = {"limits": [{"messages": 1, "per": {"unit": "days", "amount": 2}}]}


def promo(ident: str, then: str) -> dict[str, Any]:
    return {"id": ident, "name": f"A promotion, capped ({then})", "repeatable": True,
            "frequency_cap": {**CAP, "then": then}, "elements": [
                {"id": "asked", "type": "wait_for_event", "event": "Promo", "next": "mail"},
                {"id": "mail", "type": "send_message", "channel": "email",
                 "template": "ski-sale", "send_immediately": True}]}


def split(names: list[str]) -> tuple[list[str], list[str]]:
    model = Activity.model_validate({"schema_version": 1, **HELD_NURTURE})
    held = [n for n in names if controls.in_holdout(model, f"customer:{n}")]
    return [n for n in names if n not in held], held


def play(world: World) -> dict[str, list[str]]:
    """Day 1 (4 Jan, Paris): six register; day 2: four more, and one at 00:30 Paris (23:30
    UTC on the 4th: the shop's day 2, inside the quiet hours). Two treated customers and one
    of the holdout order on day 2 (the goal); two treated ones ask for the capped promotions."""
    day1, day2 = [f"d1-{n}" for n in range(6)], [f"d2-{n}" for n in range(4)]
    treated, held = split(day1)
    night = next(n for n in (f"night-{i}" for i in range(20)) if split([n])[0])
    assert len(treated) >= 2 and held
    world.load([HELD_NURTURE, promo("promo-hold", "hold"), promo("promo-skip", "skip")])
    world.run([*(registers(n, "2027-01-04T10:00:00Z") for n in day1),
               registers(night, "2027-01-04T23:30:00Z"),
               *(registers(n, "2027-01-05T10:00:00Z") for n in day2),
               *(orders(n, "2027-01-05T12:00:00Z") for n in [*treated[:2], held[0]]),
               *(custom(n, "2027-01-05T13:00:00Z", "Promo") for n in treated[:2])],
              datetime(2027, 1, 4, tzinfo=UTC), 4)
    return {"day1": day1, "day2": day2, "treated": treated, "held": held, "night": [night]}


def stack_args(world: World) -> list[str]:
    return ["--table", world.aws.s.name("Table"),
            "--customers-table", world.aws.s.name("CustomersTable"),
            "--time-zone", world.aws.s.resolver.parameters["TimeZone"],
            "--activities", str(world.tmp / "upload"), "--segments", str(EXAMPLES / "segments")]


def test_stats_give_each_shop_day_exits_by_reason_controls_and_the_holdout(world: World):
    who = play(world)
    held_day1 = len(who["held"])
    code, out = dialogue("stats", "activity", "held-nurture", *stack_args(world), "--json")
    assert code == 0, out
    stats = json.loads(out)

    # per day in the shop's time zone: the 23:30 UTC registration is the 5th's in Paris
    days = {d["day"]: d for d in stats["per_day"]}
    assert days["2027-01-04"]["entries"] == 6 and days["2027-01-05"]["entries"] == 5
    assert stats["entries"] == 11 and stats["reached"]["registered"] == 11
    # the treated get the welcome the day they entered; the holdout none
    assert days["2027-01-04"]["reached"]["hello"] == 6 - held_day1
    # every run ended once, with its reason: the goals on the 5th, the others after the wait
    assert days["2027-01-05"]["exits"] == {"reached goal": 2, "reached goal (holdout)": 1}
    assert days["2027-01-06"]["exits"] == {"completed": 3}  # day 1's other three, 2 days on
    assert days["2027-01-07"]["exits"] == {"completed": 5}  # day 2's (the night one at 00:30)
    assert stats["exits"] == {"completed": 8, "reached goal": 2, "reached goal (holdout)": 1}
    assert stats["waiting"] == {}
    # the holdout beside the treated group
    treated, held = stats["holdout"]["treated"], stats["holdout"]["holdout"]
    assert treated["entries"] + held["entries"] == 11 and held["entries"] >= held_day1
    assert (treated["reached_goal"], held["reached_goal"]) == (2, 1)
    assert treated["conversion"] == 2 / treated["entries"]
    assert held["conversion"] == 1 / held["entries"]
    # the night registration's welcome, and her reminder two nights on (00:30 Paris), were held
    # by the quiet hours and sent in the morning
    assert stats["controls"]["held"] == {"quiet hours 21:00-08:00 in Europe/Paris": 2}
    assert [m["status"] for m in stats["messages"]] == ["sent"]  # held, then sent

    # the promotions: each capped by the welcome (1 message per 2 days), held or skipped
    code, out = dialogue("stats", "activity", "promo-hold", *stack_args(world), "--json")
    hold = json.loads(out)
    assert hold["controls"]["capped"] == {"1 per 2 days": 2}
    assert hold["controls"]["held"] == {"capped by 1 per 2 days": 2}
    assert hold["exits"] == {"completed": 2}
    code, out = dialogue("stats", "activity", "promo-skip", *stack_args(world), "--json")
    skip = json.loads(out)
    assert skip["controls"]["capped"] == {"1 per 2 days": 2}
    assert skip["controls"]["skipped"] == {"capped by 1 per 2 days": 2}
    assert skip["messages"] == [
        {"status": "suppressed", "reason": "skipped: capped by 1 per 2 days", "count": 2}]

    # the same as text
    code, text = dialogue("stats", "activity", "held-nurture", *stack_args(world))
    assert code == 0
    assert "11 entries, 11 exits" in text
    assert re.search(r"2027-01-05  entries 5; reached: registered 5.*exits: reached goal 2, "
                     r"reached goal \(holdout\) 1", text)
    assert re.search(r"messages held:\n\s+2  quiet hours 21:00-08:00 in Europe/Paris", text)
    assert re.search(rf"holdout\s+{held['entries']} entries\s+1 reached goal", text)


def test_the_report_and_the_live_console_show_exits_controls_and_the_holdout(
        world: World, tmp_path: Path):
    play(world)
    out = tmp_path / "report.html"
    code, printed = dialogue("report", *stack_args(world), "--shards",
                             world.aws.s.resolver.parameters["SegmentShards"],
                             "--output", str(out), "--days", "5")
    assert code == 0, printed
    ref = insight.StackRef.from_local(world.aws)
    files = sorted((world.tmp / "upload").glob("*.json"))
    catalog, _ = load_catalog([(f.name, f.read_text()) for f in files], [])
    live = console.LiveReport(lambda: world.aws.client("dynamodb"), ref, catalog).read()
    for page in (out.read_text(), live):
        nurture = re.search(r'<section class="activity" id="activity-held-nurture".*?</section>',
                            page, re.S)
        assert nurture, "no held-nurture section"
        section = nurture.group(0)
        assert re.search(r'data-exit="reached goal"><td>exit</td>\s*<td>reached goal</td>'
                         r'<td class="num">2</td>', section)
        assert re.search(r'data-control="held">\s*<td>held</td><td>quiet hours 21:00-08:00 in '
                         r'Europe/Paris</td><td class="num">2</td>', section)
        assert re.search(r'<tr data-group="holdout"><td>holdout \(50.0 %\)</td><td class="num">'
                         r'\d+</td>\s*<td class="num">1</td>', section)
        assert 'data-day="2027-01-04"\ndata-entries="6"' in section
        assert 'data-day="2027-01-05"\ndata-entries="5"' in section
        promo_section = re.search(r'id="activity-promo-skip".*?</section>', page, re.S)
        assert promo_section and re.search(
            r'data-control="skipped">\s*<td>skipped</td><td>capped by 1 per 2 days</td>'
            r'<td class="num">2</td>', promo_section.group(0))
