"""Section 9's where-it-goes: one `dialogue simulate` run (the CLI's own `main`, in a child
process) under a profiler, and the memory it keeps between two points of a run.

* CPU by package: cProfile with each thread's CPU clock (time.thread_time) in every thread, the
  moto server's request threads included (one profile per thread, summed), self time grouped by
  the package of the function; a C function's time goes to its caller's package (json's C
  encoder to json).
* Memory: tracemalloc, a snapshot when the run has published `--trace-from` events and another at
  `--trace-to` (each after a collection, between two batches), the growth grouped by the first
  frames of the allocation's traceback that are not the standard library.

Run alone: `.venv/bin/python bench/simulator_profile.py cpu|memory --events N`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import shop_month
import simulator

PACKAGES = [  # (marker in the file's path, group), first match wins
    ("/botocore/", "botocore (boto3's client)"), ("/boto3/", "botocore (boto3's client)"),
    ("/urllib3/", "http client (urllib3, http.client)"), ("/http/client", "http client (urllib3, "
     "http.client)"), ("/werkzeug/", "http server (werkzeug, http.server)"),
    ("/http/server", "http server (werkzeug, http.server)"), ("socketserver", "http server "
     "(werkzeug, http.server)"), ("/moto/", "moto"), ("/pydantic", "pydantic"),
    ("/json/", "json"), ("/jinja2/", "jinja2"), ("/aws_lambda_powertools/", "powertools"),
    ("/dialogue/local/", "the emulator (dialogue.local)"), ("/dialogue/", "the engine (dialogue)"),
    ("/functions/", "the engine (dialogue)"), ("/copy.py", "copy (deepcopy)"),
    ("/email/", "http client (urllib3, http.client)"), ("/xml", "xml"), ("/re/", "re"),
    ("/logging/", "logging"), ("/python3.11/", "other standard library"),
]


def package(filename: str) -> str:
    return next((group for marker, group in PACKAGES if marker in filename), "other")


def moto_service(filename: str) -> str:
    return "moto/" + filename.split("/moto/", 1)[1].split("/", 1)[0] if "/moto/" in filename \
        else ""


class Profiles:
    """Self CPU per package (and per moto service), summed over every thread's profile."""

    def __init__(self) -> None:
        self.by_package: Counter[str] = Counter()
        self.by_service: Counter[str] = Counter()
        self.by_function: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, profile: cProfile.Profile) -> None:
        with self.lock:
            for entry in profile.getstats():
                code = entry.code
                if isinstance(code, str):
                    continue  # a C function: counted under its callers below
                where = package(code.co_filename)
                spent = entry.inlinetime
                for sub in entry.calls or ():
                    if isinstance(sub.code, str):  # C callee: its time to the caller's package
                        group = "json" if "json" in sub.code else where
                        self.by_package[group] += sub.inlinetime
                        if where == "moto":
                            self.by_service[moto_service(code.co_filename)] += sub.inlinetime
                self.by_package[where] += spent
                if where == "moto":
                    self.by_service[moto_service(code.co_filename)] += spent
                self.by_function[f"{code.co_filename.rsplit('/', 2)[-2:]!s} {code.co_name}"] \
                    += spent

    def every_thread(self) -> None:
        """Threads started from now on run under their own profiler (moto's request threads)."""
        run = threading.Thread.run
        profiles = self

        def profiled(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            profile.enable()
            try:
                run(thread)
            finally:
                profile.disable()
                profiles.add(profile)

        threading.Thread.run = profiled  # type: ignore[method-assign]


def cpu_child(args: list[str], out: Path) -> None:
    from dialogue.local import cli

    profiles = Profiles()
    profiles.every_thread()
    main = cProfile.Profile(time.thread_time)
    started = time.process_time()
    main.enable()
    try:
        cli.main(args)
    finally:
        main.disable()
        profiles.add(main)
    out.write_text(json.dumps({
        "cpu": time.process_time() - started, "by_package": profiles.by_package,
        "by_service": profiles.by_service,
        "top": profiles.by_function.most_common(25)}))


def memory_child(args: list[str], out: Path, first: int, second: int, frames: int) -> None:
    """Snapshots when `first` and `second` events have been published (put_events is called
    between batches: the previous one has settled)."""
    from dialogue.local import cli
    from dialogue.local.runtime import LocalAws

    put, published, snaps = LocalAws.put_events, [0], []

    def counting(self: LocalAws, events: list[dict[str, Any]]) -> Any:
        for mark in (first, second):
            if published[0] < mark <= published[0] + len(events) and len(snaps) < 2:
                gc.collect()
                snaps.append((published[0], tracemalloc.take_snapshot()))
        published[0] += len(events)
        return put(self, events)

    LocalAws.put_events = counting  # type: ignore[method-assign]
    tracemalloc.start(frames)
    cli.main(args)
    (a_n, a), (b_n, b) = snaps
    holders: Counter[str] = Counter()
    for stat in b.compare_to(a, "traceback"):
        holders[_owner(stat.traceback)] += stat.size_diff
    out.write_text(json.dumps({"from": a_n, "to": b_n, "total": sum(holders.values()),
                               "holders": holders.most_common(12)}))


def _owner(traceback: Any) -> str:
    """The allocation's first frames outside the standard library (innermost first)."""
    names = []
    for frame in reversed(traceback):  # most recent last in tracemalloc's order
        name = frame.filename
        if "/python3.11/" in name and "site-packages" not in name:
            continue
        short = name.split("site-packages/", 1)[-1].split("layers/engine/", 1)[-1]
        names.append(f"{short}:{frame.lineno}")
        if len(names) == 3:
            break
    return " ← ".join(names) or "standard library"


def run(kind: str, events: int, customers: int, extra: list[str],
        days: int = 30) -> dict[str, Any]:
    """The child: a synthetic shop's `days` days of `events` events through `dialogue
    simulate`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        path = shop_month.write(out / "events.jsonl",
                                shop_month.ShopMonth(customers).events(events, days=days))
        args = simulator.simulate_args(path, out, days)[3:]  # after `python -m dialogue.local.cli`
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(simulator.ROOT / "layers" / "engine"), str(Path(__file__).parent),
             os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, __file__, "--child", kind, str(out / "r.json"), *extra,
                        *args], env=env, check=True, stdout=subprocess.DEVNULL)
        result: dict[str, Any] = json.loads((out / "r.json").read_text())
        return result


def report_cpu(r: dict[str, Any], events: int) -> None:
    total = sum(r["by_package"].values())
    print(f"   CPU profile of one run ({events:,} events; cProfile on every thread's CPU clock, "
          f"{r['cpu']:.0f} s CPU under the profiler, self time by package):")
    for name, s in sorted(r["by_package"].items(), key=lambda kv: -kv[1]):
        if s / total >= 0.005:
            print(f"     {name:38} {s:7.1f} s  {s / total:4.0%}")
    print("     moto by service: " + ", ".join(
        f"{k} {v:.1f} s" for k, v in sorted(r["by_service"].items(), key=lambda kv: -kv[1])[:6]))
    print("     costliest functions (self): " + "; ".join(
        f"{name} {s:.1f}" for name, s in r["top"][:8]))


def report_memory(r: dict[str, Any]) -> None:
    n = r["to"] - r["from"]
    print(f"   memory kept between event {r['from']:,} and {r['to']:,} (tracemalloc, after a "
          f"collection): {r['total'] / 1024 / n:.1f} KiB per event; the holders, KiB per "
          "1,000 events:")
    for owner, size in r["holders"][:8]:
        print(f"     {size / 1024 / n * 1000:9.0f}  {owner}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", choices=["cpu", "memory"], default="cpu")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--customers", type=int, default=simulator.CUSTOMERS)
    parser.add_argument("--trace-from", type=int, default=100)
    parser.add_argument("--trace-to", type=int, default=300)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    if args.kind == "cpu":
        report_cpu(run("cpu", args.events, args.customers, [], args.days), args.events)
    else:
        report_memory(run("memory", args.events, args.customers,
                          [str(args.trace_from), str(args.trace_to), str(args.frames)], args.days))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:  # KIND OUT [FROM TO FRAMES] then simulate's arguments
        if sys.argv[2] == "cpu":
            cpu_child(sys.argv[4:], Path(sys.argv[3]))
        else:
            memory_child(sys.argv[7:], Path(sys.argv[3]), *map(int, sys.argv[4:7]))
    else:
        main()
