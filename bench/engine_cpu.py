"""Engine CPU per event, as a multiple of parsing that event with pydantic.

Both sides run over the same event mix, many times, timed with `time.process_time` (CPU of this
process, not wall time); the best of a few rounds is kept, as `timeit` does, so a busy
neighbour shows as noise rather than as cost.

The diagnostics add what the store costs per event around decide (reading and writing the state
document) and a profile of decide by engine function.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import decide
from dialogue.model.activity import Activity
from dialogue.model.customer import CustomerState
from dialogue.model.events import ShopEvent, parse_event
from dialogue.model.segment import Segment
from dialogues import activities, segments
from workload import EventMaker, customer_state, utc_now

SIZES = (10, 100)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    activities: int
    parse_us: float  # per event
    decide_us: float  # per event
    acted: float  # share of the mix's events with an effect other than a counter

    @property
    def ratio(self) -> float:
        return self.decide_us / self.parse_us


@dataclass
class Breakdown:
    load_us: float  # CustomerState.model_validate_json of the stored document (store read)
    dump_us: float  # model_dump_json (store write)


def catalog(n: int) -> Catalog:
    return Catalog([Activity.model_validate(d) for d in activities(n)],
                   [Segment.model_validate(s) for s in segments(n)])


def mix(n: int = 200) -> tuple[list[dict[str, Any]], datetime]:
    """`n` events of one customer, and a `now` just after the last."""
    now = utc_now()
    maker = EventMaker(seed=11, start=now - timedelta(hours=2))
    raws = maker.stream(n, customers=1)
    for raw in raws:  # all for the customer of customer_state()
        raw["detail"]["customer_id"] = "c00001"
    return raws, max(maker.at, now)


def best(fn: Callable[[], object], rounds: int, min_seconds: float) -> float:
    """Fastest CPU seconds per call of fn over `rounds` rounds of about min_seconds / 4 each."""
    reps = 1
    while True:
        start = time.process_time()
        for _ in range(reps):
            fn()
        spent = time.process_time() - start
        if spent >= min_seconds / 4:
            break
        reps *= 2
    fastest = spent / reps
    for _ in range(rounds - 1):
        start = time.process_time()
        for _ in range(reps):
            fn()
        fastest = min(fastest, (time.process_time() - start) / reps)
    return fastest


class Bench:
    def __init__(self) -> None:
        self.raws, self.now = mix()
        self.state = customer_state(self.now)
        self.events: list[ShopEvent] = [parse_event(r) for r in self.raws]
        self.catalogs = {n: catalog(n) for n in SIZES}

    def decide_all(self, n: int) -> Callable[[], None]:
        cat, state, now, events = self.catalogs[n], self.state, self.now, self.events

        def run() -> None:
            for event in events:
                decide(state, event, cat, now)
        return run

    def measure(self, n: int, rounds: int = 5, min_seconds: float = 1.0) -> Figures:
        raws = self.raws

        def parse_all() -> None:
            for raw in raws:
                parse_event(raw)

        acted = sum(1 for e in self.events if any(
            x.type != "reached" for x in decide(self.state, e, self.catalogs[n], self.now).effects))
        parse = best(parse_all, rounds, min_seconds) / len(raws)
        engine = best(self.decide_all(n), rounds, min_seconds) / len(self.events)
        return Figures(n, parse * 1e6, engine * 1e6, acted / len(self.events))

    def breakdown(self, min_seconds: float = 1.0) -> Breakdown:
        state = self.state
        doc = state.model_dump_json(exclude={"version"})
        load = best(lambda: CustomerState.model_validate_json(doc), 3, min_seconds / 2)
        dump = best(lambda: state.model_dump_json(exclude={"version"}), 3, min_seconds / 2)
        return Breakdown(load * 1e6, dump * 1e6)

    def profile(self, n: int, top: int = 12, sort: str = "cumulative",
                only: str = "dialogue/") -> str:
        """cProfile of decide over the mix, by `sort`, lines matching the regex `only`."""
        prof = cProfile.Profile()
        run = self.decide_all(n)
        prof.enable()
        for _ in range(5):
            run()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(sort).print_stats(only, top)
        lines = [_short(ln) for ln in out.getvalue().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
        return "\n".join(lines[start:])


def _short(line: str) -> str:
    """Paths relative to the project, site-packages or the standard library."""
    for prefix in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"], str(ROOT)):
        line = line.replace(prefix + "/", "")
    return line
