"""What a dry run (`dialogue simulate`) shows besides the timeline: the outcome events the shop
would receive, what was dead-lettered and why, the counters at the end; and, for a candidate
activity (`--activity FILE`), who would enter and what they would receive, when.

Everything runs on the embedded AWS: nothing reaches a real customer.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path
from typing import Any

from dialogue.local import readback
from dialogue.local.runtime import LocalAws


def summary(aws: LocalAws, taken: Counter[str] | None = None) -> dict[str, Any]:
    """Read once, at the end of the run (the outcome tap and the dead-letter queue are drained);
    `taken`: the outcome events the simulation already took off the tap, by detail-type."""
    outcomes = Counter(o["detail-type"] for o in readback.outcome_events(aws))
    outcomes.update(taken or {})
    return {
        "outcome_events": dict(sorted(outcomes.items())),
        "dead_lettered": [{"detail_type": body.get("detail-type"),
                           "event_id": body.get("detail", {}).get("event_id"), "reason": why}
                          for body, why in readback.rejected_events(aws)],
        "reached": readback.counters(aws)}


def format_summary(data: dict[str, Any]) -> str:
    lines = ["", "OUTCOME EVENTS the shop would receive: " + (", ".join(
        f"{k} {n}" for k, n in data["outcome_events"].items()) or "none")]
    lines.append(f"DEAD-LETTERED: {len(data['dead_lettered'])}")
    lines += [f"  {d['detail_type']} {d['event_id']}: {d['reason']}" for d in data["dead_lettered"]]
    lines.append("STATISTICS (customers who reached each element):")
    for activity, per in sorted(data["reached"].items()):
        lines.append(f"  {activity}: " + "  ".join(f"{e}:{n}" for e, n in per.items()))
    return "\n".join(lines)


def candidate(rows: list[dict[str, Any]], activity_id: str, reached: dict[str, int]) -> str:
    """The candidate activity's part of the run: who entered, what they would get and when."""
    mine = [r for r in rows  # its effects; its counts (no customer) are in the statistics
            if r["activity"] == activity_id and r["effect"] != "counted"]
    who = sorted({r["customer"] for r in mine})
    entered = next(iter(reached.values()), 0) if reached else 0
    lines = ["", f"CANDIDATE {activity_id}: {entered} entries, {len(who)} customers with effects "
             "(nothing was sent: embedded AWS)"]
    for r in mine:
        what = (f"{r['channel']} {r['template']!r} {r['status']}" if r["effect"] == "message"
                else r.get("promotion") or r.get("segment") or "")
        lines.append(f"  {r['at']}  {r['customer']:24} {r['effect']:16} {what}")
    return "\n".join(lines)


def validate_candidate(path: Path, segments: Path, templates: Path) -> None:
    """A candidate activity with a problem is refused before anything runs, as `validate`."""
    from dialogue.local.cli import validate
    from dialogue.local.inputs import UsageError

    if not path.is_file():
        raise UsageError(f"--activity {path}: no such file")
    with contextlib.redirect_stdout(io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()):
        bad = validate([path], segments, templates)
    if bad:
        raise UsageError(f"--activity {path}: " + "; ".join(out.getvalue().splitlines()))
