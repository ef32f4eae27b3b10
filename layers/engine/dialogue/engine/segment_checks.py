"""Read segment documents and report every problem as *file : JSON path : reason*.

Per document, the model (`model.segment`) finds schema errors, unknown fields, operators that do
not fit their field's type and malformed values; across documents this finds duplicate ids,
references to unknown segments and segments that refer to each other in a cycle. A segment with
a problem is left out, and so is every segment whose rule depends on one that is left out: the
engine never evaluates a rule it cannot evaluate completely.
"""

from __future__ import annotations

from dialogue.engine.checks import Problem, parse_document
from dialogue.model.segment import NODE_TAGS, Segment


def check_segments(documents: list[tuple[str, str]]) -> tuple[dict[str, Segment], list[Problem]]:
    """(name, text) documents → the valid segments by id, and every problem found."""
    problems: list[Problem] = []
    files: dict[str, str] = {}
    parsed: dict[str, Segment] = {}
    for name, text in documents:
        segment, found = parse_segment(name, text)
        problems += found
        if segment is None:
            continue
        if segment.id in parsed:
            problems.append(Problem(name, "$.id",
                                    f"id {segment.id!r} is also used by {files[segment.id]}"))
            continue
        files[segment.id], parsed[segment.id] = name, segment
    bad: set[str] = set()
    for sid, segment in parsed.items():
        for path, ref in segment.references():
            if ref not in parsed:
                problems.append(Problem(files[sid], path, f"unknown segment {ref!r}"))
                bad.add(sid)
    for cycle, edges in _cycles(parsed):
        named = " → ".join([*cycle, cycle[0]])
        problems += [Problem(files[sid], path, f"segments refer to each other in a cycle: {named}")
                     for sid, path in edges]
        bad.update(cycle)
    problems += _dependents(parsed, files, bad)
    return {sid: s for sid, s in parsed.items() if sid not in bad}, problems


def parse_segment(name: str, text: str) -> tuple[Segment | None, list[Problem]]:
    """JSON text → a segment, or its problems; the rule tree's union tags (pydantic's names for
    all / any / not / a rule) are left out of the paths."""
    return parse_document(name, text, Segment, NODE_TAGS)


def _cycles(parsed: dict[str, Segment]) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """Each cycle once: its segments in order, and (segment, JSON path) of the references
    that close it."""
    edges = {sid: [(path, ref) for path, ref in s.references() if ref in parsed]
             for sid, s in parsed.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[tuple[str, str]] = []  # (segment, path of the reference followed from it)
    found: dict[frozenset[str], tuple[list[str], list[tuple[str, str]]]] = {}

    def visit(sid: str) -> None:
        state[sid] = 1
        for path, ref in edges[sid]:
            stack.append((sid, path))
            if state.get(ref) == 1:
                start = next(i for i, (s, _) in enumerate(stack) if s == ref)
                loop = stack[start:]
                found.setdefault(frozenset(s for s, _ in loop), ([s for s, _ in loop], loop))
            elif ref not in state:
                visit(ref)
            stack.pop()
        state[sid] = 2

    for sid in parsed:
        if sid not in state:
            visit(sid)
    return list(found.values())


def _dependents(parsed: dict[str, Segment], files: dict[str, str],
                bad: set[str]) -> list[Problem]:
    """Leave out, transitively, the segments whose rules test a segment that is left out."""
    problems: list[Problem] = []
    changed = True
    while changed:
        changed = False
        for sid, segment in parsed.items():
            if sid in bad:
                continue
            broken = [(path, ref) for path, ref in segment.references() if ref in bad]
            if broken:
                path, ref = broken[0]
                problems.append(Problem(files[sid], path,
                                        f"segment {ref!r} has problems: this rule cannot be "
                                        "evaluated without it"))
                bad.add(sid)
                changed = True
    return problems
