"""Per-activity rate limits: large sends spread over the release function's runs, not dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dialogue.delivery.plan import Email, Schedule, plan
from dialogue.delivery.rate import RELEASE_EVERY, per_run, spread
from dialogue.model.controls import RateLimit

from tests.unit.test_delivery import NOW, SETTINGS, customer, job, mail_template

EIGHT_AN_HOUR = RateLimit(messages=8, per="hour")


def limited(n: int, activity: str = "act", rate: RateLimit | None = EIGHT_AN_HOUR) -> Any:
    return job(entry=n, at=NOW + timedelta(seconds=n)).model_copy(
        update={"activity_id": activity, "rate_limit": rate})


def test_a_rate_limited_message_from_the_outbox_goes_through_the_release_function():
    held = plan(limited(1), customer(), False, mail_template(), NOW, SETTINGS)
    assert isinstance(held, Schedule) and held.release_at == NOW
    assert held.reason is not None and held.reason.startswith("held: rate limit 8 per hour")
    released = plan(limited(1), customer(), False, mail_template(), NOW, SETTINGS,
                    released=True)
    assert isinstance(released, Email)


def test_each_run_lets_an_activity_s_share_go_and_parks_the_rest_for_the_runs_after():
    assert per_run(8, 3600) == 2 and per_run(1, 86400) == 1 and per_run(10, 1) == 9000
    jobs = [limited(n) for n in range(5)] + [limited(9, rate=None)] + [
        limited(n, "other", RateLimit(messages=100, per="second")) for n in range(3)]

    go, later = spread([j.model_dump_json() for j in reversed(jobs)], NOW)

    assert sorted(j.split('"entry":')[1].split(",")[0] for j in go
                  if '"activity_id":"act"' in j) == ["0", "1", "9"]  # the oldest two, unlimited
    assert sum('"activity_id":"other"' in j for j in go) == 3
    assert [(key.split("/")[3], at - NOW) for key, at, _ in later] == [
        ("2", RELEASE_EVERY), ("3", RELEASE_EVERY), ("4", 2 * RELEASE_EVERY)]
    assert later[0][2].startswith("held: rate limit 8 per hour, release at")
