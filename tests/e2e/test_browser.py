"""The report in a real headless browser (Debian's chromium, driven by Playwright): it loads with
no console error, every activity's diagram is visible with its counts, a chart has data.

The browser comes from the project's own setup (`scripts/install-browser.sh`, apt-get); when it
cannot be installed the test is skipped with the script's reason, never passed. A screenshot is
kept under build/test-artefacts/.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Shop
from .test_report import write_report

ARTEFACTS = ROOT / "build" / "test-artefacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.skip(f"playwright is not installed ({e}): pip install -r requirements.lock")
    found = subprocess.run([str(ROOT / "scripts" / "install-browser.sh")], capture_output=True,
                           text=True, timeout=900)
    if found.returncode != 0:
        reason = (found.stderr.strip().splitlines() or ["unknown reason"])[-1]
        pytest.skip(f"no headless browser: {reason}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=found.stdout.strip().splitlines()[-1],
                                     headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_the_report_shows_every_diagram_with_counts_and_charts(
        shop: Shop, tmp_path: Path, browser: Any):
    write_report(shop, tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(
        "file:") else route.continue_())  # offline: anything fetched from a network fails
    page.goto((tmp_path / "report.html").as_uri())

    assert errors == []
    flows = page.locator("svg.flow")
    assert flows.count() == 3
    for i in range(flows.count()):
        assert flows.nth(i).is_visible()
    add = page.locator('svg.flow[data-activity="big-spenders"] g[data-element="add"]')
    assert add.is_visible() and "1 customer" in (add.locator("text.count").text_content() or "")
    bars = page.locator('[data-segment="big-spenders"] svg.chart rect')
    sizes = [int(bars.nth(i).get_attribute("data-size") or 0) for i in range(bars.count())]
    assert max(sizes) == 1 and bars.last.bounding_box()["height"] > 0  # type: ignore[index]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "report.png"), full_page=True)
    page.close()


def test_the_live_console_of_serve_loads_and_answers_why(tmp_path: Path, browser: Any):
    import json
    import signal
    import sys
    import time

    import boto3

    from .test_serve_cli import free_port

    port, console = free_port(), free_port()
    log = tmp_path / "serve.log"
    serve = subprocess.Popen([sys.executable, "-m", "dialogue.local.cli", "serve", "--port",
                              str(port), "--console-port", str(console)], cwd=ROOT,
                             stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240  # a guard against a hang, not a measure
        while "Ctrl-C stops" not in log.read_text():
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        events = boto3.client("events", endpoint_url=f"http://127.0.0.1:{port}",
                              region_name="eu-west-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
        events.put_events(Entries=[{
            "EventBusName": "dialogue-local-shop", "Source": "shop",
            "DetailType": "CustomerRegistered", "Detail": json.dumps({
                "event_id": "console-1", "customer_id": "c1",
                "occurred_at": "2026-12-01T10:00:00Z"})}])
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        welcome = page.locator('svg.flow[data-activity="welcome"] g[data-element]').first
        deadline = time.monotonic() + 300  # its own guard: the start may have taken the first
        while True:  # until on_event has applied the registration
            page.goto(f"http://127.0.0.1:{console}/", timeout=180_000)  # the first read
            if welcome.get_attribute("data-count") == "1" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert errors == []
        assert welcome.is_visible() and welcome.get_attribute("data-count") == "1"
        assert page.locator("svg.flow").count() == len(list((ROOT / "examples" /
                                                             "activities").glob("*.json")))
        page.fill("input[name=customer]", "c1")
        page.click("form button")
        page.wait_for_url("**/why?customer=c1")
        assert "Welcome" in page.inner_text("pre") and errors == []
        page.close()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
