"""Where a dry run's time goes (`dialogue simulate --timings FILE`, bench/simulator.py): seconds
per phase of the simulation and per function invoked, wall clock and the process's CPU (the
embedded AWS answers from threads of this process, so its work is in the CPU figure too).

Phases nest: a function's seconds are inside the phase that invoked it. Counting costs two clock
reads per phase or invocation."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

WALL: dict[str, float] = defaultdict(float)
CPU: dict[str, float] = defaultdict(float)
CALLS: Counter[str] = Counter()


@contextmanager
def timed(name: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        WALL[name] += time.perf_counter() - wall
        CPU[name] += time.process_time() - cpu
        CALLS[name] += 1


def report() -> dict[str, Any]:
    """{name: {"wall": s, "cpu": s, "calls": n}}, by name."""
    return {name: {"wall": round(WALL[name], 3), "cpu": round(CPU[name], 3),
                   "calls": CALLS[name]} for name in sorted(WALL)}


def reset() -> None:
    for counter in (WALL, CPU, CALLS):
        counter.clear()
