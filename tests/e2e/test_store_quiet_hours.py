"""The shop's default quiet hours and blackout days, set on the stack (template parameters
QuietHours and BlackoutDates, issue 14 point 1), end to end on the simulated clock: an activity
without its own `quiet_hours` has its messages held until the shop's window opens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dialogue import bootstrap
from dialogue.local.runtime import LocalAws

from tests.e2e.test_time import World, local, registers

WELCOME = {
    "id": "welcome-now", "name": "A welcome mail at once (no quiet hours of its own)",
    "elements": [
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True}]}


@pytest.fixture
def quiet_shop(local_aws: LocalAws, tmp_path: Path) -> Iterator[World]:
    """A stack deployed with QuietHours=21:00-08:00 and BlackoutDates=2027-01-06."""
    shop_default = {"QuietHours": "21:00-08:00", "BlackoutDates": "2027-01-06"}
    saved = dict(local_aws.parameters)
    local_aws.parameters.update(shop_default)
    try:
        local_aws.reset()
        yield World(local_aws, tmp_path)
    finally:
        local_aws.parameters.clear()
        local_aws.parameters.update(saved)
        bootstrap.use_clock(bootstrap.SystemClock())
        local_aws.waits.clock = None
        local_aws.reset()  # the stack as the other tests expect it


def test_the_stack_s_quiet_hours_and_blackout_day_hold_messages_of_activities_without_their_own(
        quiet_shop: World):
    quiet_shop.load([WELCOME])
    quiet_shop.run([registers("hal", "2027-01-04T21:30:00Z"),    # 22:30 in Paris: at night
                    registers("ivy", "2027-01-05T12:00:00Z"),    # 13:00: the window is open
                    registers("jon", "2027-01-06T10:00:00Z")],   # 11:00 on the blackout day
                   datetime(2027, 1, 4, tzinfo=UTC), 4)

    sent = {j["subject"].split(":")[1]: (j["status"], local(j["sent_at"]), j.get("reason") or "")
            for j in quiet_shop.jobs()}
    assert {who: s[:2] for who, s in sent.items()} == {
        "hal": ("sent", "01-05 08:00"), "ivy": ("sent", "01-05 13:00"),
        "jon": ("sent", "01-07 08:00")}
    assert sent["hal"][2].startswith("held: quiet hours 21:00-08:00")
    assert "blackout" in sent["jon"][2]
    assert sorted(to for to, _, _ in quiet_shop.mails()) == [
        "hal@example.com", "ivy@example.com", "jon@example.com"]
