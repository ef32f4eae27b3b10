"""Refresh the README's screenshot: the demo's report in headless chromium (after `make demo`).

    .venv/bin/python scripts/screenshot.py [build/dialogue-report.html] [docs/report.png]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def main(report: Path, out: Path, activity: str = "ski-sale") -> None:
    chromium = subprocess.run([str(ROOT / "scripts" / "install-browser.sh")], check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(report.resolve().as_uri())
        page.locator(f"#activity-{activity}").screenshot(path=str(out))
        browser.close()


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    main(*(args + [ROOT / "build/dialogue-report.html", ROOT / "docs/report.png"][len(args):]))
