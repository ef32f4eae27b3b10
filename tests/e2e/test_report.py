"""`dialogue report`: one self-contained page with each activity's diagram and its counters."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import Shop
from .test_why import _setup, dialogue


def write_report(shop: Shop, tmp_path: Path) -> str:
    stack = _setup(shop, tmp_path)
    out = tmp_path / "report.html"
    code, printed = dialogue("report", *stack, "--shards",
                             shop.aws.s.resolver.parameters["SegmentShards"],
                             "--output", str(out), "--days", "5")
    assert code == 0 and printed.strip() == str(out.resolve())
    return out.read_text()


def test_the_report_draws_every_activity_with_the_stack_counters(shop: Shop, tmp_path: Path):
    page = write_report(shop, tmp_path)
    # both activities, each as a diagram
    assert re.findall(r'<svg[^>]*class="flow" data-activity="([^"]+)"', page) == \
        ["big-spenders", "hello", "thanks"]
    counts = dict(re.findall(r'data-element="([^"]+)" data-count="(\d+)"', page))
    # Ana (1200) and Karim (740) both ordered; only Ana went past the target
    assert counts["order"] == "2" and counts["spent"] == "2" and counts["add"] == "1"
    assert counts["ordered"] == counts["coupon"] == counts["mail"] == "2"
    assert "no email marketing consent" in page
    # the segment Ana joined is charted with her in it
    big = re.search(r'data-segment="big-spenders".*?</div>', page, re.S)
    assert big and "1 members now" in big.group(0) and 'data-size="1"' in big.group(0)


def test_the_report_needs_no_network(shop: Shop, tmp_path: Path):
    page = write_report(shop, tmp_path)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script src" not in page and "@import" not in page
