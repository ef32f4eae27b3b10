"""`make bench` section 9: dry runs at a shop's scale (issue 16). A synthetic shop
(bench/shop_month.py: 10,000 customers, the example activities, segments and templates) run through
`dialogue simulate`, the CLI itself, one subprocess per rung so that each rung's peak RSS is its
own (os.wait4's rusage of that child). Each rung is a month of the same shop at a different
traffic: N events over 30 days. Printed: events per second, CPU per event, peak RSS, the time of
each phase (`simulate --timings`), the RSS growth per 1,000 events between rungs, and the month's
projection against the goal (100,000 events in <= 6 minutes and <= 2 GB on one core).

The CPU profile by package and the tracemalloc holders are bench/simulator_profile.py.
Run alone: `.venv/bin/python bench/simulator.py [--sim-events 500,1000,2000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import shop_month

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CUSTOMERS = 10_000
LADDER = (500, 1_000, 2_000)  # events per rung by default: minutes (see docs/performance.md)
DAYS = 1  # simulated days per rung by default: the month's density is 3,333 events a day
MONTH = 100_000  # the month
GOAL_SECONDS = 360.0  # the month in <= 6 minutes
GOAL_RSS_MB = 2048.0  # and <= 2 GB
PHASES = ("publishing", "events delivered", "daily checks", "waits", "sends", "release lookups",
          "readback")


@dataclass
class Rung:
    events: int
    customers: int  # distinct customers in the rung's events
    wall: float  # seconds, the whole command (start of the embedded AWS to its stop)
    cpu: float  # the child's user + system CPU seconds
    rss_mb: float  # the child's peak RSS
    rows: int  # jsonl rows written (effects)
    status: int
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.events


def simulate_args(events: Path, out: Path, days: int = 30) -> list[str]:
    """`dialogue simulate` as a user runs it, with the example catalog."""
    return [sys.executable, "-m", "dialogue.local.cli", "simulate",
            "--activities", str(EXAMPLES / "activities"), "--segments", str(EXAMPLES / "segments"),
            "--templates", str(EXAMPLES / "templates"), "--events", str(events),
            "--from", shop_month.START.date().isoformat(), "--days", str(days),
            "--output", "jsonl", "--quiet", "--timings", str(out / "timings.json")]


def run_rung(events: int, customers: int = CUSTOMERS, days: int = DAYS,
             seed: int = 2026) -> Rung:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        stream = shop_month.ShopMonth(customers, seed).events(events, days=days)
        path = shop_month.write(out / "events.jsonl", stream)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "layers" / "engine"), os.environ.get("PYTHONPATH", "")])}
        started = time.monotonic()
        with open(out / "rows.jsonl", "wb") as rows, open(out / "stderr.txt", "wb") as err:
            child = subprocess.Popen(simulate_args(path, out, days), stdout=rows, stderr=err,
                                     env=env)
            _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        timings_file = out / "timings.json"
        return Rung(events, len({e["detail"]["customer_id"] for e in stream}), wall,
                    usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                    sum(1 for _ in open(out / "rows.jsonl", "rb")), os.waitstatus_to_exitcode(
                        status), json.loads(timings_file.read_text()) if timings_file.exists()
                    else {})


def measure(ladder: tuple[int, ...] = LADDER, customers: int = CUSTOMERS,
            days: int = DAYS) -> list[Rung]:
    """The rungs, each printed as soon as it is measured (a long ladder shows its progress)."""
    rungs = []
    for n in ladder:
        rungs.append(run_rung(n, customers, days))
        print_rung(rungs[-1])
    return rungs


def print_rung(r: Rung) -> None:
    ok = "" if r.status == 0 else f"   EXIT {r.status}"
    print(f"   {r.events:>7,} events ({r.customers:,} customers): {r.events / r.wall:6.2f} "
          f"events/s ({r.wall:.0f} s wall), {r.cpu_ms:5.0f} ms CPU per event "
          f"({r.cpu:.0f} s), peak RSS {r.rss_mb:5.0f} MB, {r.rows:,} rows{ok}", flush=True)
    if r.timings:
        print("     " + json.dumps(r.timings, separators=(",", ":")), flush=True)


def report(rungs: list[Rung], month: int = MONTH, days: int = DAYS) -> bool:
    """Print the rungs' phases, growth and projection; True when the month's projection meets
    the goal."""
    last = rungs[-1]
    total = last.timings.get("simulation", {}).get("cpu", 0.0) + _cpu(last, "readback")
    print(f"   phases of the {last.events:,}-event rung, CPU s (wall s), nested functions below:")
    for name in PHASES:
        t = last.timings.get(name)
        if t:
            print(f"     {name:17} {t['cpu']:7.1f} ({t['wall']:6.1f})  {t['calls']:>6} times  "
                  f"{t['cpu'] / total:4.0%}" if total else "")
    functions = sorted(((k.removeprefix("function "), v) for k, v in last.timings.items()
                        if k.startswith("function ")), key=lambda kv: -kv[1]["cpu"])
    print("     functions (inside the phases): " + ", ".join(
        f"{k} {v['cpu']:.1f}" for k, v in functions if v["cpu"] >= 0.05))
    print("     relays (inside the phases): " + ", ".join(
        f"{k} {last.timings[k]['cpu']:.1f}" for k in ("stream reads", "pipe receives")
        if k in last.timings))
    _growth(rungs)
    return _verdict(rungs, month, days)


def _cpu(r: Rung, name: str) -> float:
    return r.timings.get(name, {}).get("cpu", 0.0)


def _growth(rungs: list[Rung]) -> None:
    steps = [(a, b, 1000 * (b.rss_mb - a.rss_mb) / (b.events - a.events),
              1000 * (b.cpu - a.cpu) / (b.events - a.events))
             for a, b in zip(rungs, rungs[1:], strict=False)]
    if not steps:
        return
    print("   between rungs, per 1,000 more events: " + "; ".join(
        f"{a.events:,}→{b.events:,}: RSS {mb:+.0f} MB, CPU {cpu:.0f} s "
        f"({b.customers - a.customers:+,} customers)" for a, b, mb, cpu in steps))
    grows = any(mb > 5 for *_, mb, _ in steps)
    print(f"   RSS {'GROWS' if grows else 'does not grow'} with events at {rungs[-1].customers:,}"
          " customers touched (states grow with the customers touched: see the holders, section "
          "9's profile)")


def _verdict(rungs: list[Rung], month: int, days: int) -> bool:
    """The month projected from the last two rungs: the rung's fixed cost (start-up, its days)
    plus the other days' daily checks, waits and sends at the rung's CPU per day, plus the
    marginal cost per event; RSS linear in the events."""
    if len(rungs) < 2:
        return False
    a, b = rungs[-2], rungs[-1]
    per_event = (b.cpu - a.cpu) / (b.events - a.events)
    per_day = sum(_cpu(b, p) for p in ("daily checks", "waits", "sends")) / days
    fixed = b.cpu - per_event * b.events + per_day * (30 - days)
    cpu = fixed + per_event * month
    rss = b.rss_mb + (b.rss_mb - a.rss_mb) / (b.events - a.events) * (month - b.events)
    ok = cpu <= GOAL_SECONDS and rss <= GOAL_RSS_MB
    print(f"   the month ({month:,} events) projected from the last two rungs: {cpu / 60:.0f} min "
          f"of CPU ({fixed:.0f} s fixed, {per_day:.0f} s of it per simulated day, + "
          f"{1000 * per_event:.0f} ms per event), peak RSS "
          f"{rss:.0f} MB (linear)   goal <= {GOAL_SECONDS / 60:.0f} min, <= {GOAL_RSS_MB:.0f} MB:"
          f" {'met' if ok else 'MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-events", default=",".join(map(str, LADDER)),
                        help="events per rung, comma-separated (the month: 100000)")
    parser.add_argument("--sim-customers", type=int, default=CUSTOMERS)
    parser.add_argument("--sim-days", type=int, default=DAYS)
    args = parser.parse_args()
    ladder = tuple(int(n) for n in args.sim_events.split(","))
    print(f"9. Dry runs at scale: `dialogue simulate` on a synthetic shop, {args.sim_customers:,} "
          f"customers, {args.sim_days} simulated days per rung")
    report(measure(ladder, args.sim_customers, args.sim_days), days=args.sim_days)


if __name__ == "__main__":
    main()
