"""Least privilege, checked locally (moto enforces no IAM): every AWS call each function makes
while the example shop's events run is allowed by its role in the expanded template."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dialogue import bootstrap
from dialogue.local import iam
from dialogue.local.runtime import LocalAws
from dialogue.local.simulate import SimulatedClock, Simulation, first_day, load_events, parse_time

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_call_a_function_makes_in_the_demo_is_allowed_by_its_role(
        local_aws: LocalAws) -> None:
    local_aws.reset()
    local_aws.upload_catalog(sorted((EXAMPLES / "activities").glob("*.json")),
                             sorted((EXAMPLES / "segments").glob("*.json")),
                             sorted((EXAMPLES / "templates").glob("*.json")))
    events = load_events(EXAMPLES / "events")
    start = first_day(min(parse_time(e["time"]) for e in events).date().isoformat())
    try:
        with iam.CallRecorder() as recorder:
            bootstrap.reset()  # the functions' sessions are made again, with the recorder
            Simulation(local_aws, SimulatedClock(start)).run(events, start, 12)
    finally:
        bootstrap.use_clock(bootstrap.SystemClock())
        bootstrap.reset()

    calls = Counter(r.function for r in recorder.requests)
    assert {"OnEventFunction", "SendMessageFunction", "DispatchFunction",
            "DailyCheckFunction"} <= set(calls), calls
    statements = {f: iam.statements(local_aws.s.resolver, f) for f in calls}
    denied = sorted({(r.function, r.action, r.resource, r.context)
                     for r in recorder.requests if not iam.allowed(statements[r.function], r)})
    assert not denied, "\n".join(map(str, denied))
