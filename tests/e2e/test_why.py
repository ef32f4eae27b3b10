"""`dialogue why` and `dialogue stats activity` read a (served) stack's tables and explain."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

from dialogue.local import cli

from .conftest import EXAMPLES, ORDER, THANKS_BY_MAIL, Shop
from .test_send import register

HELLO = {"id": "hello", "name": "Hello at the send time", "elements": [
    {"id": "registered", "type": "registers", "next": "mail"},
    {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"}]}


def dialogue(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def _setup(shop: Shop, tmp_path: Path) -> list[str]:
    folder = tmp_path / "activities"
    folder.mkdir()
    shutil.copy(EXAMPLES / "activities" / "07-big-spenders.json", folder)
    (folder / "thanks.json").write_text(json.dumps(THANKS_BY_MAIL))
    (folder / "hello.json").write_text(json.dumps(HELLO))
    shop.load(sorted(folder.glob("*.json")))
    shop.aws.upload_catalog([], [], sorted((EXAMPLES / "templates").glob("*.json")))
    register(shop, "ana", email_consent=True)
    register(shop, "karim", email_consent=False)
    shop.publish("OrderPlaced", "ana", **{**ORDER, "order_id": "a1", "total": "1200"})
    shop.publish("OrderPlaced", "karim", **{**ORDER, "order_id": "k1", "total": "740"})
    shop.deliver()
    return ["--table", shop.aws.s.name("Table"),
            "--customers-table", shop.aws.s.name("CustomersTable"),
            "--time-zone", shop.aws.s.resolver.parameters["TimeZone"],
            "--activities", str(folder), "--segments", str(EXAMPLES / "segments")]


def test_why_names_the_failed_condition_and_the_message_outcome(shop: Shop, tmp_path: Path):
    stack = _setup(shop, tmp_path)

    code, out = dialogue("why", "karim", "big-spenders", *stack)
    assert code == 0, out
    assert "entered 1 time(s)" in out
    assert "purchase history orders value 740.00 < 1000" in out

    code, out = dialogue("why", "karim", *stack)
    assert "email 'order-coupon': suppressed: no email marketing consent" in out

    code, out = dialogue("why", "ana", *stack)
    assert "email 'order-coupon': sent" in out
    # she joined Big spenders through it: today's "not yet in it" fails, yet she went past
    assert "passed on entry (today: in segment big-spenders)" in out

    # registered at 19:00 in Paris: the welcome waits for the next morning's send time
    code, out = dialogue("why", "ana", "hello", *stack)
    assert "email 'welcome': held for the send time 09:00 Europe/Paris (released 2026-12-05)" \
        in out

    code, _ = dialogue("why", "nobody", *stack)
    assert code == 1


def test_stats_activity_counts_each_element_and_the_outcomes(shop: Shop, tmp_path: Path):
    stack = _setup(shop, tmp_path)
    code, out = dialogue("stats", "activity", "thanks", "--json", *stack)
    assert code == 0, out
    stats = json.loads(out)
    assert stats["entries"] == 2 and stats["coupons"] == 2
    assert stats["reached"] == {"ordered": 2, "coupon": 2, "mail": 2}
    assert {(m["status"], m["reason"]) for m in stats["messages"]} >= {
        ("suppressed", "no email marketing consent")}
    code, out = dialogue("stats", "activity", "big-spenders", *stack)
    assert "add" in out and code == 0


def test_stats_segment_without_the_shard_count_is_refused(shop: Shop, tmp_path: Path):
    code = cli.main(["stats", "segment", "big-spenders", "--table", shop.aws.s.name("Table")])
    assert code == 2
