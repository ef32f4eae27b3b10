"""Segments end to end on embedded AWS (issue #4): rule-based segments filled when their file is
written to S3, refreshed by the daily check before the *customer is in segment* triggers and by
`dialogue segments refresh`; SegmentEntered / SegmentLeft on the bus; `dialogue stats segment`;
exact windows; a broken segment skipped at run time; membership kept in the customer's state."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue import bootstrap
from dialogue.aws.stats import segment_stats
from dialogue.engine.checks import load_catalog
from dialogue.local import cli, readback
from dialogue.local.demo import SimulatedClock
from dialogue.local.stepfunctions import function_name
from dialogue.model.outcomes import OUTCOMES

from tests.e2e.conftest import EXAMPLES, NOW, Shop, example

PARIS = ZoneInfo("Europe/Paris")  # the stack's TimeZone: its days count the daily checks


# --- documents ----------------------------------------------------------------------------------
def rule_segment(tmp: Path, segment_id: str, rule: dict[str, Any], **extra: Any) -> Path:
    return _write(tmp / "segments", segment_id, {
        "schema_version": 1, "id": segment_id, "name": segment_id, "kind": "rule",
        "time_zone": "Europe/Paris", "rule": rule, **extra})


def managed_segment(tmp: Path, segment_id: str) -> Path:
    return _write(tmp / "segments", segment_id, {
        "schema_version": 1, "id": segment_id, "name": segment_id, "kind": "managed",
        "managed_by_activities": True})


def activity(tmp: Path, activity_id: str, start: date, *elements: dict[str, Any],
             **extra: Any) -> Path:
    return _write(tmp / "activities", activity_id, {
        "schema_version": 1, "id": activity_id, "name": activity_id, "state": "active",
        "start_date": start.isoformat(),
        "time_zone": "Europe/Paris", "elements": list(elements), **extra})


def _write(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def ordered_within(days: int) -> dict[str, Any]:
    return {"field": "orders.count", "op": "greater", "value": 0,
            "time_frame": {"kind": "last_days", "days": days}}


def spent_over(amount: int) -> dict[str, Any]:
    return {"field": "orders.value", "op": "greater", "value": amount}


def valid(activities: list[Path], segments: list[Path]) -> None:
    """The runtime skips broken documents silently for the test: fail loudly instead."""
    _, problems = load_catalog([(str(p), p.read_text()) for p in activities],
                               [(str(p), p.read_text()) for p in segments])
    assert not problems, [str(p) for p in problems]


# --- the shop and the operator ------------------------------------------------------------------
def set_clock(at: datetime) -> None:
    bootstrap.use_clock(SimulatedClock(at))


def upload(shop: Shop, segments: list[Path], activities: list[Path] | None = None) -> None:
    """Write the files to the catalog bucket (with the catalog caches cold, as after their
    minute), then let the stack react: S3 → EventBridge → refresh queue → workers."""
    valid(activities or [], segments)
    shop.aws.upload_catalog(activities or [], segments)
    shop.deliver()


def put_object(shop: Shop, path: Path, prefix: str = "segments/") -> None:
    """What `aws s3 cp` does: only the S3 write; the running functions keep their caches."""
    shop.aws.client("s3").put_object(Bucket=shop.aws.s.name("CatalogBucket"),
                                     Key=prefix + path.name, Body=path.read_bytes())
    shop.deliver()


def order(shop: Shop, customer: str, at: datetime, total: str = "50") -> None:
    shop.publish("OrderPlaced", customer, at=at, order_id=f"{customer}-{at:%Y%m%d%H%M%S}",
                 total=total, promotion_codes=[],
                 lines=[{"product_id": "lamp", "unit_price": total, "categories": ["Home"],
                         "discount": "0"}])


def daily_check(shop: Shop, at: datetime) -> str:
    """The scheduled daily check at `at` (once per shop-local day), delivered to the end;
    returns what the functions printed (their JSON logs and metrics)."""
    set_clock(at)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        shop.aws.run_scheduled("DailyCheckFunction")
    return out.getvalue()


def dialogue(*argv: str) -> tuple[int, str]:
    """The `dialogue` command in this process; AWS_ENDPOINT_URL names the embedded AWS (set by
    LocalAws.start, as an operator would for a served stack)."""
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def members(shop: Shop, segment: str) -> set[str]:
    return {m.removeprefix("customer:") for m in readback.segment_members(shop.aws, segment)}


def segment_events(shop: Shop) -> list[tuple[str, str, str]]:
    """(detail-type, segment, customer) of each SegmentEntered / SegmentLeft published on the
    bus since the last call, as a rule of the shop receives them."""
    out = []
    for event in readback.outcome_events(shop.aws):
        kind = event["detail-type"]
        if kind not in ("SegmentEntered", "SegmentLeft"):
            continue
        assert event["source"] == "dialogue"
        detail = OUTCOMES[kind].model_validate(event["detail"])  # the documented, flat detail
        segment, customer = event["detail"]["segment"], detail.customer
        out.append((kind, segment, customer.removeprefix("customer:")))
    return sorted(out)


def history(shop: Shop, customer: str, segment: str | None = None) -> list[tuple[str, str,
                                                                                 datetime, str]]:
    state = readback.customers(shop.aws)[f"customer:{customer}"]
    return [(h.segment, h.change, h.at, h.by or "") for h in state.segment_history
            if segment is None or h.segment == segment]


# --- 1. a new or changed segment file is filled at once ----------------------------------------
def test_a_new_segment_file_is_filled_at_once_without_waiting_for_the_daily_check(
        shop: Shop, tmp_path: Path):
    order(shop, "frank", NOW - timedelta(days=3), total="300")
    order(shop, "lea", NOW - timedelta(days=3), total="20")
    shop.deliver()
    assert members(shop, "big-spenders-now") == set()

    spenders = rule_segment(tmp_path, "big-spenders-now", spent_over(100))
    valid([], [spenders])
    put_object(shop, spenders)  # a brand-new file; no daily check runs

    assert members(shop, "big-spenders-now") == {"frank"}
    assert segment_events(shop) == [("SegmentEntered", "big-spenders-now", "frank")]


def test_a_changed_segment_is_re_evaluated_and_managed_segments_are_never_touched(
        shop: Shop, tmp_path: Path):
    golfers = EXAMPLES / "segments" / "golfers.json"
    sports = [EXAMPLES / "segments" / f"{name}.json" for name in ("skiers", "tennis-players")]
    upload(shop, [golfers, *sports, rule_segment(tmp_path, "spenders", spent_over(100))],
           [example("01-sports-interests.json")])
    shop.publish("OrderPlaced", "jonas", order_id="o1", total="90", promotion_codes=[],
                 lines=[{"product_id": "club", "unit_price": "90", "categories": ["Golf"],
                         "discount": "0"}])
    order(shop, "frank", NOW - timedelta(days=3), total="300")
    order(shop, "lea", NOW - timedelta(days=3), total="20")
    shop.deliver()
    assert members(shop, "spenders") == set()  # filled before anybody ordered
    upload(shop, [rule_segment(tmp_path, "spenders", spent_over(100))])  # written again
    assert members(shop, "spenders") == {"frank"}
    assert members(shop, "golfers") == {"jonas"}
    segment_events(shop)

    # The rule changes: Léa now qualifies, Frank still does; Jonas (90 € on golf) now too.
    upload(shop, [rule_segment(tmp_path, "spenders", spent_over(10))])
    assert members(shop, "spenders") == {"frank", "lea", "jonas"}
    # Narrower again: those who no longer qualify leave.
    upload(shop, [rule_segment(tmp_path, "spenders", spent_over(250))])
    assert members(shop, "spenders") == {"frank"}
    assert segment_events(shop) == [
        ("SegmentEntered", "spenders", "jonas"), ("SegmentEntered", "spenders", "lea"),
        ("SegmentLeft", "spenders", "jonas"), ("SegmentLeft", "spenders", "lea")]

    # Managed: its file written again, asked for by name, a daily check — its members stay.
    upload(shop, [golfers])
    code, _ = dialogue("segments", "refresh", "golfers", "spenders", "--function",
                       function_name(shop.aws.s.resolver, "RefreshFunction"))
    shop.deliver()
    daily_check(shop, NOW + timedelta(days=1))
    assert code == 0
    assert members(shop, "golfers") == {"jonas"}
    assert [h[:2] for h in history(shop, "jonas", "golfers")] == [("golfers", "added")]
    assert segment_events(shop) == []


@pytest.mark.parametrize("second", ["the same segment corrected", "another new segment"])
def test_a_segment_written_within_a_minute_of_another_refresh_is_evaluated_as_written(
        shop: Shop, tmp_path: Path, second: str):
    order(shop, "frank", NOW - timedelta(days=3), total="300")
    order(shop, "lea", NOW - timedelta(days=3), total="20")
    shop.deliver()
    put_object(shop, rule_segment(tmp_path, "spenders", spent_over(100)))
    assert members(shop, "spenders") == {"frank"}

    # At once, as one does after looking at the result: the threshold corrected, or a second
    # segment written.
    name = "spenders" if second == "the same segment corrected" else "small-spenders"
    put_object(shop, rule_segment(tmp_path, name, spent_over(10)))

    assert members(shop, name) == {"frank", "lea"}


# --- 2. the daily check refreshes before the in-segment triggers --------------------------------
def test_the_daily_check_refreshes_rule_segments_before_the_in_segment_triggers(
        shop: Shop, tmp_path: Path):
    start = NOW.astimezone(PARIS).date()
    big = rule_segment(tmp_path, "big-buyers", spent_over(100))
    offer = managed_segment(tmp_path, "vip-offer")
    vip = activity(tmp_path, "vip-welcome", start,
                   {"id": "in-big", "type": "in_segment", "segments": ["big-buyers"],
                    "mode": "daily", "next": "add"},
                   {"id": "add", "type": "add_to_segment", "segment": "vip-offer"})
    upload(shop, [big, offer], [vip])  # filled at once: nobody has ordered yet
    order(shop, "frank", NOW - timedelta(hours=2), total="300")
    order(shop, "lea", NOW - timedelta(hours=2), total="30")
    shop.deliver()
    assert members(shop, "big-buyers") == set()  # an order alone refreshes no rule segment

    check = NOW + timedelta(hours=1)
    daily_check(shop, check)

    assert members(shop, "big-buyers") == {"frank"}
    assert members(shop, "vip-offer") == {"frank"}  # fired by the very check that added him
    assert history(shop, "frank") == [("big-buyers", "added", check, "rule"),
                                      ("vip-offer", "added", check, "vip-welcome")]
    assert readback.counters(shop.aws)["vip-welcome"] == {"in-big": 1, "add": 1,
                                                          "@exit:completed": 1}


# --- 3. refresh now from the command line -------------------------------------------------------
def test_segments_refresh_on_the_command_line_refreshes_now(shop: Shop, tmp_path: Path):
    upload(shop, [rule_segment(tmp_path, "recent-buyers", ordered_within(30)),
                  rule_segment(tmp_path, "big-buyers", spent_over(100))])
    order(shop, "frank", NOW - timedelta(days=1), total="300")
    order(shop, "lea", NOW - timedelta(days=1), total="20")
    shop.deliver()
    assert members(shop, "recent-buyers") == set()

    code, out = dialogue("segments", "refresh", "recent-buyers", "--function",
                         function_name(shop.aws.s.resolver, "RefreshFunction"))
    shop.deliver()  # the refresh function's work items, through the daily workers

    assert code == 0
    assert json.loads(out.splitlines()[-1])["refresh"] == ["recent-buyers"]  # the answer
    assert members(shop, "recent-buyers") == {"frank", "lea"}
    assert members(shop, "big-buyers") == set()  # only what was named
    assert dialogue("segments", "refresh", "recent-buyers")[0] == 2  # no --function: refused


# --- 4, 5, 8. entries and exits: the bus, the statistics, the customer's state ------------------
@dataclass
class Story:
    """Frank's only order is 29 days old at the first check; Léa registers (a 3-day welcome
    membership and eligibility until her first order) and orders the same day."""

    start: datetime  # noon in Paris, 5 days ago: `dialogue stats` counts back from today
    first: datetime  # first daily check: both enter recent-buyers
    second: datetime  # two days later; it catches up the day between (`engine/schedule.py`),
    #                   on which Frank's order was 30 days old: he left that day
    third: datetime  # two days later again; the day between caught up: Léa's welcome
    #                  membership (3 days) ended that day
    events: list[list[tuple[str, str, str]]]  # what reached the bus at each step


def _story(shop: Shop, tmp: Path) -> Story:
    today = datetime.now(PARIS).date()
    start = datetime.combine(today - timedelta(days=5), time(12), PARIS).astimezone(UTC)
    welcome = activity(tmp, "welcome", start.astimezone(PARIS).date(),
                       {"id": "registered", "type": "registers", "next": "newcomer"},
                       {"id": "newcomer", "type": "add_to_segment", "segment": "newcomers",
                        "for_days": 3, "next": "eligible"},
                       {"id": "eligible", "type": "add_to_segment", "segment": "eligible"})
    first_order = activity(tmp, "first-order", start.astimezone(PARIS).date(),
                           {"id": "ordered", "type": "places_order", "next": "remove"},
                           {"id": "remove", "type": "remove_from_segment",
                            "segment": "eligible"})
    set_clock(start)
    upload(shop, [rule_segment(tmp, "recent-buyers", ordered_within(30)),
                  managed_segment(tmp, "newcomers"), managed_segment(tmp, "eligible")],
           [welcome, first_order])
    story = Story(start, start + timedelta(hours=2), start + timedelta(days=2, hours=2),
                  start + timedelta(days=4, hours=2), [])
    segment_events(shop)

    order(shop, "frank", start - timedelta(days=29), total="80")
    shop.publish("CustomerRegistered", "lea", at=start)
    shop.deliver()
    set_clock(start + timedelta(hours=1))
    order(shop, "lea", start + timedelta(hours=1), total="40")
    shop.deliver()
    story.events.append(segment_events(shop))
    for check in (story.first, story.second, story.third):
        daily_check(shop, check)
        story.events.append(segment_events(shop))
    return story


@pytest.fixture
def story(shop: Shop, tmp_path: Path) -> Iterator[Story]:
    yield _story(shop, tmp_path)


def test_entering_and_leaving_segments_is_published_on_the_bus(shop: Shop, story: Story):
    assert story.events == [
        # events: the activities add Léa (welcome, eligible), her order removes her
        [("SegmentEntered", "eligible", "lea"), ("SegmentEntered", "newcomers", "lea"),
         ("SegmentLeft", "eligible", "lea")],
        # first daily check: the rule holds for both
        [("SegmentEntered", "recent-buyers", "frank"), ("SegmentEntered", "recent-buyers", "lea")],
        # two days later Frank's order is 31 days old
        [("SegmentLeft", "recent-buyers", "frank")],
        # the 3-day welcome membership has run out
        [("SegmentLeft", "newcomers", "lea")],
    ]
    assert members(shop, "recent-buyers") == {"lea"}
    assert members(shop, "newcomers") == members(shop, "eligible") == set()


def test_stats_segment_prints_the_size_and_the_entries_and_exits_per_day(
        shop: Shop, story: Story):
    def stats(segment: str) -> tuple[str, dict[str, tuple[int, int, int]]]:
        code, out = dialogue("stats", "segment", segment, "--table", shop.aws.s.name("Table"),
                             "--shards", shop.aws.s.resolver.parameters.get("SegmentShards", "16"),
                             "--time-zone", "Europe/Paris", "--days", "10")
        assert code == 0, out
        head, _, *rows = out.splitlines()
        per_day = {}
        for row in rows:
            day, size, entered, left = row.split()
            per_day[day] = (int(size), int(entered), int(left))
        return head, per_day

    def day(at: datetime, plus: int = 0) -> str:
        return (at.astimezone(PARIS).date() + timedelta(days=plus)).isoformat()

    head, per_day = stats("recent-buyers")
    assert head == "segment recent-buyers: 1 members now"
    # (size at the end of the day, entered, left)
    assert per_day[day(story.start, -1)] == (0, 0, 0)
    assert per_day[day(story.first)] == (2, 2, 0)
    assert per_day[day(story.first, 1)] == (1, 0, 1)  # caught up by the second check
    assert per_day[day(story.second)] == (1, 0, 0)
    assert per_day[max(per_day)] == (1, 0, 0)  # today
    assert sum(e for _, e, _ in per_day.values()) == 2
    assert sum(lf for _, _, lf in per_day.values()) == 1

    head, per_day = stats("newcomers")
    assert head == "segment newcomers: 0 members now"
    assert per_day[day(story.start)] == (1, 1, 0)
    assert per_day[day(story.third, -1)] == (0, 0, 1)
    head, per_day = stats("eligible")
    assert per_day[day(story.start)] == (0, 1, 1)


def test_membership_changes_are_recorded_in_the_customers_state(shop: Shop, story: Story):
    assert history(shop, "frank") == [
        ("recent-buyers", "added", story.first, "rule"),
        ("recent-buyers", "removed", story.second - timedelta(days=1), "rule")]
    assert history(shop, "lea") == [
        ("newcomers", "added", story.start, "welcome"),
        ("eligible", "added", story.start, "welcome"),
        ("eligible", "removed", story.start + timedelta(hours=1), "first-order"),
        ("recent-buyers", "added", story.first, "rule"),
        ("newcomers", "removed", story.third - timedelta(days=1), "welcome")]
    lea = readback.customers(shop.aws)["customer:lea"]
    assert [(h.segment, h.change, h.element) for h in lea.segment_history] == [
        ("newcomers", "added", "newcomer"), ("eligible", "added", "eligible"),
        ("eligible", "removed", "remove"), ("recent-buyers", "added", None),
        ("newcomers", "removed", None)]  # the element that made the change, if one did
    assert set(lea.segments) == {"recent-buyers"}
    assert lea.segments["recent-buyers"].since == story.first
    assert "recent-buyers" not in readback.customers(shop.aws)["customer:frank"].segments


def stats_of(shop: Shop, segment: str, today: date) -> dict[str, Any]:
    """What `dialogue stats segment` prints, for a simulated `today` (the command counts back
    from the real one)."""
    return segment_stats(shop.aws.client("dynamodb"), shop.aws.s.name("Table"), segment,
                         int(shop.aws.s.resolver.parameters.get("SegmentShards", "16")), today)


def test_a_time_limited_rule_membership_ends_is_published_and_counted(
        shop: Shop, tmp_path: Path):
    upload(shop, [rule_segment(tmp_path, "recent-trial", ordered_within(30),
                               membership_days=2)])
    order(shop, "frank", NOW - timedelta(days=1))
    shop.deliver()
    checks = [NOW + timedelta(days=n, hours=1) for n in range(4)]
    for check in checks:
        daily_check(shop, check)
        if check == checks[1]:
            assert members(shop, "recent-trial") == {"frank"}

    # He left after 2 days though he still qualifies, and does not join again while he does.
    assert members(shop, "recent-trial") == set()
    assert segment_events(shop) == [("SegmentEntered", "recent-trial", "frank"),
                                    ("SegmentLeft", "recent-trial", "frank")]
    assert history(shop, "frank") == [("recent-trial", "added", checks[0], "rule"),
                                      ("recent-trial", "removed", checks[2], "rule")]
    stats = stats_of(shop, "recent-trial", checks[-1].astimezone(PARIS).date())
    assert stats["size"] == 0
    assert [(d["entered"], d["left"]) for d in stats["days"][-4:]] == [(1, 0), (0, 0), (0, 1),
                                                                       (0, 0)]


@pytest.mark.parametrize("then", ["add again", "remove"])
def test_an_ended_time_limited_membership_is_counted_as_left_when_an_activity_acts_first(
        shop: Shop, tmp_path: Path, then: str):
    start = NOW.astimezone(PARIS).date()
    trial = activity(tmp_path, "trial", start,
                     {"id": "registered", "type": "registers", "next": "add"},
                     {"id": "add", "type": "add_to_segment", "segment": "trial", "for_days": 1})
    action = ({"type": "add_to_segment", "segment": "trial", "for_days": 1} if then == "add again"
              else {"type": "remove_from_segment", "segment": "trial"})
    ordered = activity(tmp_path, "ordered", start,
                       {"id": "ordered", "type": "places_order", "next": "act"},
                       {"id": "act", **action})
    upload(shop, [managed_segment(tmp_path, "trial")], [trial, ordered])
    shop.publish("CustomerRegistered", "sofia", at=NOW)  # a member until NOW + 24 h
    shop.deliver()
    daily_check(shop, NOW + timedelta(hours=7))  # 02:00 in Paris: not over yet
    set_clock(NOW + timedelta(hours=26))  # over, and the next daily check is 5 hours away
    order(shop, "sofia", NOW + timedelta(hours=26))
    shop.deliver()
    daily_check(shop, NOW + timedelta(hours=31))

    expected = ["added", "removed", "added"] if then == "add again" else ["added", "removed"]
    assert [change for _, change, _, _ in history(shop, "sofia")] == expected
    stats = stats_of(shop, "trial", (NOW + timedelta(hours=31)).astimezone(PARIS).date())
    entered = sum(d["entered"] for d in stats["days"])
    left = sum(d["left"] for d in stats["days"])
    assert entered - left == stats["size"] == len(members(shop, "trial"))


# --- 6. windows are exact at evaluation time ----------------------------------------------------
def test_a_29_day_old_order_is_in_the_last_30_days_today_and_out_two_days_later(
        shop: Shop, tmp_path: Path):
    upload(shop, [rule_segment(tmp_path, "ordered-30-days", ordered_within(30))])
    order(shop, "karim", NOW - timedelta(days=29))  # his only order
    order(shop, "sofia", NOW - timedelta(days=1))
    shop.deliver()

    daily_check(shop, NOW)
    assert members(shop, "ordered-30-days") == {"karim", "sofia"}
    daily_check(shop, NOW + timedelta(days=2))  # Karim's order is 31 days old
    assert members(shop, "ordered-30-days") == {"sofia"}
    daily_check(shop, NOW + timedelta(days=29, hours=1))  # Sofia's: 30 days and an hour old
    assert members(shop, "ordered-30-days") == set()


# --- 7. a broken segment document is skipped at run time ----------------------------------------
def test_a_broken_segment_in_s3_is_skipped_with_an_error_and_the_others_are_refreshed(
        shop: Shop, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    upload(shop, [rule_segment(tmp_path, "big-buyers", spent_over(100)),
                  rule_segment(tmp_path, "recent-buyers", ordered_within(30))])
    order(shop, "frank", NOW - timedelta(days=1), total="300")
    shop.deliver()
    daily_check(shop, NOW)
    assert members(shop, "big-buyers") == members(shop, "recent-buyers") == {"frank"}

    # big-buyers gets a typo; a new segment file is not even JSON.
    typo = rule_segment(tmp_path, "big-buyers", {"field": "orders.valeu", "op": "greater",
                                                 "value": 100})
    garbled = tmp_path / "segments" / "garbled.json"
    garbled.write_text('{"id": "garbled", "kind": "rule", ')
    caplog.clear()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        shop.aws.upload_catalog([], [typo, garbled])
        shop.aws.drain()
    order(shop, "lea", NOW + timedelta(hours=20), total="400")
    shop.deliver()
    daily_check(shop, NOW + timedelta(days=1))

    assert members(shop, "recent-buyers") == {"frank", "lea"}  # the others are refreshed
    assert members(shop, "big-buyers") == {"frank"}  # kept as it was until it is fixed
    bucket = shop.aws.s.name("CatalogBucket")
    errors = [r.getMessage() for r in caplog.records
              if r.levelname == "ERROR" and r.name == "dialogue"]
    assert any(f"s3://{bucket}/segments/big-buyers.json : $.rule.field : unknown field "
               "'orders.valeu' (did you mean 'orders.value'?)" in e for e in errors), errors
    assert any(f"s3://{bucket}/segments/garbled.json : line 1 column 35 : invalid JSON" in e
               for e in errors), errors
    # The metric InvalidCatalogDocumentAlarm watches: Dialogue / InvalidDocuments / service.
    metrics = [json.loads(line) for line in printed.getvalue().splitlines() if '"_aws"' in line]
    invalid = [m for m in metrics if "InvalidDocuments" in m]
    assert invalid and invalid[0]["InvalidDocuments"] == [2.0], metrics
    assert invalid[0]["service"] == "dialogue"
    assert invalid[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Dialogue"


def test_a_segment_naming_an_unknown_segment_is_skipped_at_run_time_like_validate_says(
        shop: Shop, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    order(shop, "frank", NOW - timedelta(days=1), total="300")
    shop.deliver()
    # "bought lately and not a VIP", with the VIP segment misspelt; and a misspelt field.
    not_vip = rule_segment(tmp_path, "not-vip", {"all": [
        ordered_within(30), {"not": {"field": "segments", "op": "contains", "value": "vipp"}}]})
    typo = rule_segment(tmp_path, "typo", {"all": [{"field": "orders.valeu", "op": "greater",
                                                    "value": 100}]})
    caplog.clear()
    shop.aws.upload_catalog([], [not_vip, typo])
    shop.deliver()
    daily_check(shop, NOW)

    bucket = shop.aws.s.name("CatalogBucket")
    errors = [r.getMessage() for r in caplog.records
              if r.levelname == "ERROR" and r.name == "dialogue"]
    assert members(shop, "not-vip") == set()  # left out, not "everyone who is not in vipp"
    assert any(f"s3://{bucket}/segments/not-vip.json : $.rule.all[1].not.value : unknown "
               "segment 'vipp'" in e for e in errors), errors
    assert any(f"s3://{bucket}/segments/typo.json : $.rule.all[0].field : unknown field "
               "'orders.valeu'" in e for e in errors), errors
