"""A message is sent once or dead-lettered with its reason, whatever dies when: send_message and
the reconciliation on moto's DynamoDB (the template's table), with the function killed between
every two steps, replies lost, a throttled provider, and the queue late, out of order, twice.
The world (provider, queue, kills) is bench/delivery_faults.py's, also `make bench`'s."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import delivery_faults as world  # noqa: E402


@pytest.fixture
def run() -> Iterator[world.Run]:
    """One job, no random fault: each test injects its own."""
    with world.table() as (db, name):
        yield world.Run(db, name, random.Random(1), world.Faults(0, 0, 0, 0, 0, 0, 0, 0))


def deliver(run: world.Run, kill_at: str | None = None, receives: int = 1) -> Any:
    [job] = run.add_jobs(1) if not run.queue else [None]
    run.kill_at = kill_at
    try:
        return run.service.handle_record(run.queue[0]["body"], receives, None)
    except (Exception, world.Kill) as e:
        return e
    finally:
        run.kill_at = None


def row(run: world.Run) -> dict[str, Any]:
    [item] = run.db.scan(TableName=run.table)["Items"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def after_leases(run: world.Run) -> None:
    run.clock.at += timedelta(minutes=10)


@pytest.mark.parametrize("kill_at", world.KILL_POINTS)
def test_a_send_killed_at_any_step_is_sent_once_or_dead_lettered_never_reported_sent_unsent(
        run: world.Run, kill_at: str):
    assert isinstance(deliver(run, kill_at), world.Kill)
    deliver(run)  # the queue's redelivery, at once: the lease still runs
    after_leases(run)
    deliver(run, receives=2)  # and after the lease
    run.reconcile()

    key, address = row(run)["pk"].removeprefix("JOB#"), "c0@example.com"
    sent, reasons = run.accepted[address], run.dead.get(key, [])
    assert sent <= 1
    if kill_at in ("before_claim", "after_mark"):  # nothing ambiguous: sent, once
        assert sent == 1 and reasons == [] and row(run)["status"] == "sent"
        assert run.published[key] >= 1
    else:  # the attempt died holding the claim: outcome unknown, said so, never resent
        assert row(run)["status"] == "unknown" and row(run)["outcome"] == "MessageOutcomeUnknown"
        assert len(reasons) == 1 and "outcome unknown" in reasons[0]
        assert run.published[key] == 0  # no MessageSent for what nobody confirmed


def test_a_redelivery_during_the_lease_backs_off_and_sends_nothing(run: world.Run):
    assert isinstance(deliver(run, "after_claim"), world.Kill)
    error = deliver(run)
    assert type(error).__name__ == "JobBusy"
    assert run.accepted["c0@example.com"] == 0 and row(run)["status"] == "sending"


def test_a_claim_whose_reply_was_lost_and_retried_by_botocore_still_sends(run: world.Run):
    run.service.jobs._jobs._db._rate = 1.0  # type: ignore[attr-defined] # every reply lost
    assert str(deliver(run)) == "sent"
    assert run.accepted["c0@example.com"] == 1
    assert row(run)["status"] == "sent" and row(run)["provider_id"].startswith("ses-")
    assert run.published[row(run)["pk"].removeprefix("JOB#")] == 1


def test_a_timeout_after_the_provider_accepted_is_outcome_unknown_not_suppressed(
        run: world.Run):
    run.faults.timeout = 1.0
    assert str(deliver(run)) == "unknown"
    assert run.accepted["c0@example.com"] == 1
    assert row(run)["outcome"] == "MessageOutcomeUnknown"
    [reason] = run.dead[row(run)["pk"].removeprefix("JOB#")]
    assert "outcome unknown" in reason and "ReadTimeoutError" in reason


def test_a_throttle_whose_give_back_is_refused_is_dead_lettered_not_lost(run: world.Run):
    run.faults.unavailable, run.faults.release_refused = 1.0, 1.0
    deliver(run)
    assert row(run)["status"] == "sending"  # the claim could not be given back
    after_leases(run)
    run.reconcile()
    assert run.accepted["c0@example.com"] == 0
    assert row(run)["status"] == "unknown" and run.dead[row(run)["pk"].removeprefix("JOB#")]


def test_a_throttled_provider_on_the_last_try_is_dead_lettered_with_why(run: world.Run):
    run.faults.unavailable = 1.0
    assert str(deliver(run, receives=8)) == "failed"
    [reason] = run.dead[row(run)["pk"].removeprefix("JOB#")]
    assert "unavailable on the last try" in reason and "Throttling" in reason
    assert row(run)["status"] == "failed" and row(run)["outcome"] == "MessageSuppressed"


def test_a_reconciliation_killed_after_the_dead_letter_reports_it_at_its_next_run(
        run: world.Run):
    assert isinstance(deliver(run, "after_accept"), world.Kill)
    after_leases(run)
    run.faults.reconcile_kill = 1.0
    run.reconcile()
    assert row(run)["status"] == "unknown" and "outcome" not in row(run)  # not yet reported
    run.faults.reconcile_kill = 0.0
    after_leases(run)
    run.reconcile()
    assert row(run)["outcome"] == "MessageOutcomeUnknown"
    assert len(run.dead[row(run)["pk"].removeprefix("JOB#")]) == 2  # twice, never zero times


def test_under_30_percent_provider_failures_kills_and_lost_replies_nothing_is_lost_or_twice():
    tally = world.measure(jobs=150, seed=7)
    assert tally.injected["provider unavailable"] > 10 and tally.injected["killed after_accept"]
    assert tally.injected["lost DynamoDB reply, retried"] > 5
    assert tally.lost == 0 and tally.sent_twice == 0 and tally.false_sent == 0
    assert tally.wrong_outcome == 0 and tally.redriven_without_reason == 0
    assert tally.sent_once + tally.dead_lettered == tally.jobs
    assert tally.sent_once > tally.jobs // 2
