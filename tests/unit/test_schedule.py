"""The daily schedule as EventBridge Scheduler fires it, and the days a late run catches up."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from dialogue.engine.schedule import exists, fires, missed_days, run_instant
from dialogue.local.demo import SimulatedClock
from dialogue.local.simulate import daily_times
from dialogue.services import DailyCheck

PARIS = ZoneInfo("Europe/Paris")
TWO = time(2, 0)


def test_two_in_the_morning_does_not_exist_in_paris_on_the_spring_night():
    assert exists(date(2026, 3, 28), TWO, PARIS)
    assert not exists(date(2026, 3, 29), TWO, PARIS)
    assert fires(date(2026, 3, 29), TWO, PARIS) is None
    assert fires(date(2026, 3, 29), time(3, 0), PARIS) == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_on_the_autumn_night_the_schedule_fires_once_at_the_first_two_oclock():
    assert fires(date(2026, 10, 25), TWO, PARIS) == datetime(2026, 10, 25, 0, tzinfo=UTC)


def test_the_simulated_schedule_skips_the_spring_night_as_the_scheduler_does():
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    times = daily_times("cron(0 2 * * ? *)", "Europe/Paris", start)

    firsts = [next(times) for _ in range(3)]

    assert firsts == [datetime(2026, 3, 28, 1, tzinfo=UTC), datetime(2026, 3, 30, 0, tzinfo=UTC),
                      datetime(2026, 3, 31, 0, tzinfo=UTC)]


def test_missed_days_go_back_to_the_last_day_checked():
    checked = {date(2026, 5, 9)}

    missed = missed_days(date(2026, 5, 12), checked.__contains__)

    assert missed == [date(2026, 5, 10), date(2026, 5, 11)]


def test_nothing_is_caught_up_when_no_day_of_the_window_was_checked():
    assert missed_days(date(2026, 5, 12), lambda d: False, window=7) == []


def test_a_late_day_is_judged_at_todays_time_of_day_on_that_day():
    now = datetime(2026, 3, 30, 0, tzinfo=UTC)  # 02:00 summer time
    assert run_instant(date(2026, 3, 29), now, PARIS).astimezone(PARIS).date() == date(2026, 3, 29)
    assert run_instant(date(2026, 5, 11), datetime(2026, 5, 12, 0, tzinfo=UTC), PARIS) == \
        datetime(2026, 5, 11, 0, tzinfo=UTC)


class Runs:
    """Claims as DynamoDailyRuns keeps them: a day is checked once its work is handed out."""

    def __init__(self, checked: set[str]):
        self.status = {day: "handed_out" for day in checked}

    def claim(self, day: str, at: str, segments: int) -> bool:
        if day in self.status:
            return False
        self.status[day] = "started"
        return True

    def handed_out(self, day: str) -> None:
        self.status[day] = "handed_out"

    def checked(self, day: str) -> bool:
        return self.status.get(day) == "handed_out"


class Histogram:
    def merged(self) -> dict[str, int]:
        return {}

    def save_snapshot(self, day: str, histogram: dict[str, int]) -> None:
        pass


def test_the_next_run_hands_the_missed_days_to_every_worker_before_today():
    sent: list[dict[str, Any]] = []

    class Work:
        def send(self, items: list[dict[str, Any]]) -> None:
            sent.extend(items)

    runs = Runs({"2026-05-09"})
    check = DailyCheck(runs=runs, work=Work(), rfm=Histogram(),
                       clock=SimulatedClock(datetime(2026, 5, 12, 0, tzinfo=UTC)), zone=PARIS,
                       segments=2, count=lambda name, n: None)

    answer = check.start()

    assert answer["caught_up"] == ["2026-05-10T00:00:00+00:00", "2026-05-11T00:00:00+00:00"]
    assert [item["catch_up"] for item in sent] == [answer["caught_up"]] * 2
    assert all(runs.checked(d) for d in ("2026-05-10", "2026-05-11", "2026-05-12"))
    assert check.start()["started"] is False
