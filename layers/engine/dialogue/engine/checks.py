"""Read activity and segment documents and report every problem as *file : JSON path : reason*.

Used by `dialogue validate` and by the runtime loader alike, so what passes on a marketer's
machine is exactly what the engine runs; a broken document is skipped, never the whole catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, RootModel, ValidationError

from dialogue.delivery.render import template_problems
from dialogue.engine.catalog import (
    BASE_WRITES,
    MAX_EVENT_WRITES,
    MAX_RELAYED_ROWS,
    Catalog,
    writes_by_event,
)
from dialogue.engine.template_checks import send_problems, template_render_problems
from dialogue.model.activity import (
    AbandonsCartTrigger,
    Activity,
    AddToSegment,
    Branch,
    InSegmentTrigger,
    MessageOutcomeTrigger,
    RemoveFromSegment,
    SendMessage,
    Trigger,
    Wait,
    trigger_event,
)
from dialogue.model.base import DocumentError, read_document
from dialogue.model.events import json_path
from dialogue.model.segment import Segment
from dialogue.model.targets import SegmentTarget
from dialogue.model.template import EmailTemplate, MessageTemplate, SmsTemplate

M = TypeVar("M", bound=BaseModel)


class _TemplateDocument(RootModel[MessageTemplate]):
    """A template file: an e-mail or an SMS template, told apart by `channel`."""

DAILY_TRIGGERS = ("abandons_cart", "in_segment", "birthday")


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} : {self.path} : {self.reason}"


def parse_document(name: str, text: str, model: type[M],
                   tags: tuple[str, ...] = ()) -> tuple[M | None, list[Problem]]:
    """JSON text → model, or the problems (bad JSON with its line, every schema error)."""
    try:
        raw: Any = read_document(text)
    except DocumentError as e:
        return None, [Problem(name, e.where, e.reason)]
    if not isinstance(raw, dict):
        return None, [Problem(name, "$", "the top level must be a JSON object")]
    try:
        return model.model_validate(raw), []
    except ValidationError as e:
        return None, [Problem(name, json_path(_document_loc(err["loc"], raw, tags)),
                              err["msg"].removeprefix("Value error, "))
                      for err in e.errors()]
    except Exception as e:  # noqa: BLE001 - a validator's own failure costs this document only
        return None, [Problem(name, "$", f"could not be read ({type(e).__name__}: {e})")]


def _document_loc(loc: tuple[Any, ...], raw: Any, tags: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """Drop the discriminated unions' tags from pydantic's location: they are not JSON keys.
    `tags`: a model's own union names (a segment rule's all / any / not / field nodes)."""
    out: list[Any] = []
    node = raw
    for part in loc:
        if (isinstance(node, dict) and isinstance(part, str) and part not in node
                and (part in tags or part in (node.get("type"), node.get("channel")))):
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def load_catalog(
    activities: Iterable[tuple[str, str]], segments: Iterable[tuple[str, str]],
    templates: Iterable[tuple[str, str]] = (),
) -> tuple[Catalog, list[Problem]]:
    """(name, text) documents → a catalog of the valid ones, and every problem found.

    Message templates are checked against the activities when any are given.
    """
    problems: list[Problem] = []
    good_templates: dict[str, EmailTemplate | SmsTemplate] = {}
    template_docs = list(templates)
    for name, text in template_docs:
        document, found = parse_document(name, text, _TemplateDocument)
        template = document.root if document is not None else None
        if template is not None:
            found = [Problem(name, f"$.{field}", reason)
                     for field, reason in template_problems(template)]
            if not found:  # rendered only once it parses and names only known values
                found = [Problem(name, f"$.{field}", reason)
                         for field, reason in template_render_problems(template)]
        problems += found
        if template is not None and not found:
            good_templates[template.id] = template
    from dialogue.engine.segment_checks import check_segments  # it imports this module

    known, found = check_segments(list(segments))
    problems += found
    good_segments = list(known.values())
    good: list[Activity] = []
    seen_ids: dict[str, str] = {}
    for name, text in activities:
        activity, found = parse_document(name, text, Activity)
        if activity is not None:
            found = check_activity(name, activity, known)
            if template_docs:
                found += _template_problems(name, activity, good_templates)
            if activity.id in seen_ids:
                other = seen_ids[activity.id]
                found.append(Problem(name, "$.id", f"id {activity.id!r} is also used by {other}"))
        problems += found
        if activity is not None and not found:
            seen_ids[activity.id] = name
            good.append(activity)
            # Reported, and the activity still runs: such a message is held with this reason.
            problems += [Problem(name, path, reason)
                         for path, reason in send_problems(activity, good_templates)]
    good, found = within_write_bound(good, seen_ids)
    return Catalog(good, good_segments, good_templates.values()), problems + found


def within_write_bound(activities: list[Activity],
                       files: dict[str, str]) -> tuple[list[Activity], list[Problem]]:
    """The activities, in order, as long as no event can need more than MAX_EVENT_WRITES writes
    in them together, nor more than MAX_RELAYED_ROWS rows that must commit with the state; each
    one that would take an event beyond is left out, with the reason."""
    kept: list[Activity] = []
    totals: dict[str, int] = {}
    relayed: dict[str, int] = {}
    problems: list[Problem] = []
    for activity in activities:
        own, own_relayed = writes_by_event(activity), writes_by_event(activity, True)
        over = [(kind, n) for kind, n in own.items()
                if BASE_WRITES + totals.get(kind, 0) + n > MAX_EVENT_WRITES]
        over_relayed = [(kind, n) for kind, n in own_relayed.items()
                        if relayed.get(kind, 0) + n > MAX_RELAYED_ROWS]
        if over:
            kind, n = over[0]
            problems.append(Problem(files[activity.id], "$.elements", (
                f"one {kind} event could then need {BASE_WRITES + totals.get(kind, 0) + n} "
                f"writes, more than {MAX_EVENT_WRITES}: this activity adds {n}, the activities "
                f"loaded before it {totals.get(kind, 0)}; split the work across fewer activities")))
            continue
        if over_relayed:
            kind, n = over_relayed[0]
            problems.append(Problem(files[activity.id], "$.elements", (
                f"one {kind} event could then need {relayed.get(kind, 0) + n} messages, coupons "
                f"and segment changes, more than the {MAX_RELAYED_ROWS} that commit with the "
                f"customer's state in one transaction: this activity adds {n}, the activities "
                f"loaded before it {relayed.get(kind, 0)}; split the work across fewer "
                "activities")))
            continue
        kept.append(activity)
        for kind, n in own.items():
            totals[kind] = totals.get(kind, 0) + n
        for kind, n in own_relayed.items():
            relayed[kind] = relayed.get(kind, 0) + n
    return kept, problems


def _template_problems(name: str, activity: Activity,
                       templates: dict[str, EmailTemplate | SmsTemplate]) -> list[Problem]:
    out = []
    for i, el in enumerate(activity.elements):
        if isinstance(el, SendMessage):
            template = templates.get(el.template)
            if template is None:
                out.append(Problem(name, f"$.elements[{i}].template",
                                   f"no valid template {el.template!r}"))
            elif template.channel != el.channel:
                out.append(Problem(name, f"$.elements[{i}].template",
                                   f"template {el.template!r} is for {template.channel}, "
                                   f"not {el.channel}"))
    return out


def check_activity(name: str, activity: Activity, segments: dict[str, Segment]) -> list[Problem]:
    """Rules that need the whole document or the segment catalogue."""
    out: list[Problem] = []

    def problem(path: str, reason: str) -> None:
        out.append(Problem(name, path, reason))

    index: dict[str, int] = {}
    for i, el in enumerate(activity.elements):
        if el.id in index:
            problem(f"$.elements[{i}].id", f"element id {el.id!r} is used twice")
        index.setdefault(el.id, i)

    first = activity.entry
    if trigger_event(first) is None and first.type not in DAILY_TRIGGERS:
        problem("$.elements[0].type", f"the first element must be a trigger, not {first.type!r}")
    if isinstance(first, Trigger) and first.timeout is not None:
        problem("$.elements[0].timeout", "a timeout is only for a trigger after the first "
                                         "element (customers wait there for it to fire)")
    for i, el in enumerate(activity.elements):
        if isinstance(el, MessageOutcomeTrigger):
            out += _outcome_problems(name, activity, i, el)
        once = (isinstance(el, InSegmentTrigger | AbandonsCartTrigger) and el.mode == "once")
        if once and i > 0:
            problem(f"$.elements[{i}]", f"a {el.type!r} trigger in mode 'once' must be the first "
                                        "element (it runs on the activity's first active day)")
        elif once and activity.start_date is None:
            problem("$.start_date", f"a {el.type!r} trigger in mode 'once' runs on the "
                                    "activity's first active day: set a start_date")

    edges: dict[str, list[tuple[str, str]]] = {}
    for i, el in enumerate(activity.elements):
        links = ([(f"$.elements[{i}].paths[{j}].next", p.next) for j, p in enumerate(el.paths)]
                 if isinstance(el, Branch) else [(f"$.elements[{i}].next", el.next)])
        if isinstance(el, Trigger) and el.timeout is not None and i > 0:
            links.append((f"$.elements[{i}].timeout.next", el.timeout.next))
        edges[el.id] = []
        for path, target in links:
            if target is None:
                continue
            if target not in index:
                problem(path, f"refers to unknown element {target!r}")
            elif target == first.id:
                problem(path, "goes back to the first element (a flow runs left to right)")
            else:
                edges[el.id].append((path, target))
        if isinstance(el, Wait) and el.next is None:
            problem(f"$.elements[{i}].next", "a wait must lead somewhere")

    out += _graph_problems(name, activity, edges, index)
    out += _segment_problems(name, activity, segments)
    return out


def _outcome_problems(name: str, activity: Activity, i: int,
                      el: MessageOutcomeTrigger) -> list[Problem]:
    """A message outcome follows an e-mail of the same activity (SES reports deliveries,
    bounces, opens and clicks; dialogue receives no SMS delivery status), and is never the
    first element."""
    message = activity.by_id.get(el.message)
    if i == 0:
        return [Problem(name, "$.elements[0].type", "a 'message_outcome' follows a message: it "
                                                    "cannot be the first element")]
    if isinstance(message, SendMessage) and message.channel == "sms":
        return [Problem(name, f"$.elements[{i}].outcome",
                        f"{el.outcome!r} of {el.message!r}, an SMS: dialogue receives no SMS "
                        "delivery status (nor opens or clicks); outcomes are e-mail's only")]
    if not isinstance(message, SendMessage) or message.channel != "email":
        return [Problem(name, f"$.elements[{i}].message",
                        f"{el.message!r} is not an e-mail send_message of this activity")]
    return []


def _graph_problems(name: str, activity: Activity, edges: dict[str, list[tuple[str, str]]],
                    index: dict[str, int]) -> list[Problem]:
    out: list[Problem] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str) -> None:
        state[node] = 1
        for path, nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                out.append(Problem(name, path, f"forms a cycle back to {nxt!r}"))
            elif nxt not in state:
                visit(nxt)
        state[node] = 2

    visit(activity.entry.id)
    for el in activity.elements:
        if el.id not in state:
            out.append(Problem(name, f"$.elements[{index[el.id]}]",
                               f"element {el.id!r} is unreachable from the first element"))
    return out


def _segment_problems(name: str, activity: Activity, segments: dict[str, Segment]) -> list[Problem]:
    out: list[Problem] = []
    for i, el in enumerate(activity.elements):
        refs: list[tuple[str, str]] = []
        if isinstance(el, AddToSegment | RemoveFromSegment):
            path = f"$.elements[{i}].segment"
            seg = segments.get(el.segment)
            if seg is None:
                out.append(Problem(name, path, f"unknown segment {el.segment!r}"))
            elif not seg.managed_by_activities:
                out.append(Problem(name, path, f"segment {el.segment!r} is not managed by "
                                               "marketing activities: add/remove is not allowed"))
        if isinstance(el, InSegmentTrigger):
            refs += [(f"$.elements[{i}].segments[{k}]", s) for k, s in enumerate(el.segments)]
        conditions = getattr(el, "conditions", None)
        groups = ([(f"$.elements[{i}].conditions", conditions)] if conditions is not None
                  else [(f"$.elements[{i}].paths[{j}].conditions", p.conditions)
                        for j, p in enumerate(el.paths)] if isinstance(el, Branch) else [])
        for base, conds in groups:
            for c, cond in enumerate(conds):
                if isinstance(cond, SegmentTarget):
                    refs += [(f"{base}[{c}].segments[{k}]", s) for k, s in enumerate(cond.segments)]
        out += [Problem(name, path, f"unknown segment {seg_id!r}")
                for path, seg_id in refs if seg_id not in segments]
    return out
