"""Why (not): one customer's way through one activity, explained from their stored state.

Pure and off the hot path: nothing is recorded per event for it. The truth of each condition is
the engine's own (`targets.holds`), so the explanation cannot disagree with a decision taken on
the same state at the same moment; the values beside it ("orders value 740.00 < 1000") are
computed here only to be read. Conditions are judged on the state *now*: a customer who entered
last month is shown what they would meet today, and the message rows (their outcome, recorded
by delivery) say what happened to what was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from dialogue.model.activity import (
    Activity,
    AddToSegment,
    Branch,
    Element,
    IssueCoupon,
    RemoveFromSegment,
    SendMessage,
    TargetElement,
    Wait,
)
from dialogue.model.customer import CustomerState
from dialogue.model.targets import (
    AttributeTarget,
    BrowsingTarget,
    CartTarget,
    DayTimeTarget,
    OnlineBehaviourTarget,
    PurchaseHistoryTarget,
    SegmentTarget,
    SocialTarget,
    Target,
)

from . import targets
from .explain_triggers import Verdict, compared, number, time_frame, trigger_verdict


@dataclass(frozen=True)
class Message:
    """What delivery recorded for one message job of this customer (its row in the table)."""

    element_id: str
    status: str
    reason: str | None = None
    at: str | None = None


@dataclass
class Line:
    element_id: str
    kind: str
    status: str  # passed, stopped, waiting, reached, not reached, sent, suppressed, ...
    text: str


@dataclass
class Explanation:
    activity_id: str
    name: str
    entered: int
    headline: str
    lines: list[Line] = field(default_factory=list)


def explain(state: CustomerState, activity: Activity, now: datetime,
            messages: list[Message] | None = None) -> Explanation:
    """The customer's entries, where they wait, and for every element the verdict at `now`."""
    journey = state.journeys.get(activity.id)
    entered = journey.entries if journey else 0
    waiting = {i.element: i for i in (journey.waiting if journey else [])}
    entry = activity.entry
    if entered:
        last = journey.last_entered_at if journey else None
        headline = f"entered {entered} time(s), last {_when(last, activity)}"
        first = Line(entry.id, entry.type, "passed", "entered")
    else:
        verdict = _not_entered(state, activity, now)
        headline = "never entered: " + verdict.text
        first = Line(entry.id, entry.type, "passed" if verdict.ok else "stopped", verdict.text)
    if waiting:
        headline += "; waiting at " + ", ".join(sorted(waiting))
    out = Explanation(activity.id, activity.name, entered, headline, [first])
    by_element = {m.element_id: m for m in messages or []}
    done = set(by_element) | set(waiting) | {
        c.element for c in state.segment_history if c.by == activity.id and c.element}
    walk = _Walk(state, activity, now, set(waiting), by_element, done)
    reached = walk.run(entry.next, out.lines)
    for element in activity.elements[1:]:
        if element.id not in reached:
            out.lines.append(Line(element.id, element.type, "not reached",
                                  "not on this customer's path"))
    order = {e.id: i for i, e in enumerate(activity.elements)}
    out.lines.sort(key=lambda ln: order.get(ln.element_id, 0))
    return out


def _not_entered(state: CustomerState, activity: Activity, now: datetime) -> Verdict:
    if activity.state != "active":
        return Verdict(False, "the activity is inactive")
    start, end = activity.window
    if start is not None and now < start:
        return Verdict(False, f"the activity starts on {activity.start_date}")
    if end is not None and now >= end:
        return Verdict(False, f"the activity ended on {activity.end_date}")
    return trigger_verdict(activity.entry, state, activity, now)


def _after(activity: Activity, start: str | None) -> set[str]:
    """Every element reachable from `start` (itself included)."""
    stack, seen = [start], set()
    while stack:
        element_id = stack.pop()
        if element_id is None or element_id in seen or element_id not in activity.by_id:
            continue
        seen.add(element_id)
        el = activity.by_id[element_id]
        timeout = getattr(el, "timeout", None)
        stack += [el.next, timeout.next if timeout else None]
        stack += [p.next for p in el.paths] if isinstance(el, Branch) else []
    return seen


@dataclass
class _Walk:
    """The customer's path at `now`. `done`: elements the stored state shows they reached (a
    message row, a segment change, a wait): a condition that fails today but was passed on the
    way there is shown as passed, with today's verdict beside it."""

    state: CustomerState
    activity: Activity
    now: datetime
    waiting: set[str]
    messages: dict[str, Message]
    done: set[str]

    def went_past(self, start: str | None) -> bool:
        return bool(self.done & _after(self.activity, start))

    def run(self, start: str | None, lines: list[Line]) -> set[str]:
        stack, seen = [start], set()
        while stack:
            element_id = stack.pop()
            if element_id is None or element_id in seen:
                continue
            seen.add(element_id)
            line, go_on = self.step(self.activity.by_id[element_id])
            lines.append(line)
            stack.extend(reversed(go_on))
        return seen

    def step(self, el: Element) -> tuple[Line, list[str | None]]:
        state, activity, now = self.state, self.activity, self.now
        match el:
            case TargetElement():
                verdicts = [target_verdict(c, state, activity, now) for c in el.conditions]
                failed = [v.text for v in verdicts if not v.ok]
                if failed and self.went_past(el.next):
                    return Line(el.id, el.type, "passed", "passed on entry (today: "
                                + "; ".join(failed) + ")"), [el.next]
                if failed:
                    return Line(el.id, el.type, "stopped", "; ".join(failed)), []
                return Line(el.id, el.type, "passed",
                            "; ".join(v.text for v in verdicts)), [el.next]
            case Branch():
                return self.branch(el)
            case SendMessage():
                return _message(el, state, self.messages.get(el.id)), [el.next]
            case Wait():
                if el.id in self.waiting:
                    return Line(el.id, el.type, "waiting",
                                f"waiting here ({el.amount} {el.unit})"), []
                return Line(el.id, el.type, "reached", f"waits {el.amount} {el.unit}"), [el.next]
            case IssueCoupon():
                return Line(el.id, el.type, "reached", f"coupon {el.promotion}"), [el.next]
            case AddToSegment() | RemoveFromSegment():
                now_in = "in it now" if state.in_segment(el.segment, now) else "not in it now"
                return Line(el.id, el.type, "reached",
                            f"segment {el.segment} ({now_in})"), [el.next]
        # a later trigger: the customer parks there until it fires (or its timeout runs out)
        if el.id in self.waiting:
            return Line(el.id, el.type, "waiting", "waiting for this trigger to fire"), []
        verdict = trigger_verdict(el, state, activity, now)
        ok = verdict.ok or self.went_past(el.next)
        return Line(el.id, el.type, "passed" if ok else "stopped", verdict.text), [el.next]

    def branch(self, el: Branch) -> tuple[Line, list[str | None]]:
        texts, taken = [], []
        for path in el.paths:
            verdicts = [target_verdict(c, self.state, self.activity, self.now)
                        for c in path.conditions]
            ok = all(v.ok for v in verdicts)
            why = "; ".join(v.text for v in verdicts if not v.ok or ok) or "no conditions"
            if not ok and self.went_past(path.next):
                ok, why = True, f"taken on entry (today: {why})"
            texts.append(f"path {path.name!r}: {'qualifies' if ok else 'does not qualify'} "
                         f"({why})")
            if ok:
                taken.append(path.next)
        if el.mode == "random":
            taken = [p.next for p in el.paths if self.went_past(p.next)]
            return Line(el.id, el.type, "reached", "random split; " + " | ".join(texts)), taken
        if el.mode == "first":
            taken = taken[:1]
        return Line(el.id, el.type, "passed" if taken else "stopped", " | ".join(texts)), taken


def _message(el: SendMessage, state: CustomerState, recorded: Message | None) -> Line:
    if recorded is not None:
        text = recorded.status + (f": {recorded.reason}" if recorded.reason else "")
        if recorded.status == "scheduled" and recorded.at:
            day, _, rest = recorded.at.partition(" ")  # "2026-12-05 09:00 Europe/Paris"
            text = f"held for the send time {rest} (released {day})"
        return Line(el.id, el.type, recorded.status, f"{el.channel} {el.template!r}: {text}")
    consent = state.consent.email if el.channel == "email" else state.consent.sms
    address = state.profile.email if el.channel == "email" else state.profile.phone
    if not consent:
        text = f"no {el.channel} marketing consent"
    elif not address:
        text = "no e-mail address" if el.channel == "email" else "no phone number"
    else:
        text = "consent and address present; no message recorded"
    return Line(el.id, el.type, "reached", f"{el.channel} {el.template!r}: {text}")


def target_verdict(t: Target, state: CustomerState, activity: Activity,
                   now: datetime) -> Verdict:
    """Whether the target holds (the engine's answer) and the values it compared."""
    ok = targets.holds(t, state, activity, now)
    match t:
        case SegmentTarget():
            inside = [s for s in t.segments if state.in_segment(s, now)]
            outside = [s for s in t.segments if s not in inside]
            if t.match == "none":
                text = ("in segment " + ", ".join(inside)) if inside else \
                    "in none of " + ", ".join(t.segments)
            elif ok:
                text = "in segment " + ", ".join(inside)
            else:
                text = "not in segment " + ", ".join(outside)
        case PurchaseHistoryTarget():
            measure = targets.purchase_measure(t, state, activity, now)
            what = f"{t.measure} {'count' if t.aggregate == 'count' else 'value'}"
            scope = " of " + ", ".join([*t.categories, *t.products]) if (
                t.categories or t.products) else ""
            shown = f"{measure:.2f}" if t.aggregate == "value" else number(measure)
            text = (f"purchase history {what}{scope} {shown} "
                    f"{compared(t.compare, ok)}{time_frame(t.time_frame)}")
        case CartTarget():
            lines = state.cart.lines if state.cart else []
            value = sum((ln.value for ln in lines), Decimal(0))
            items = sum(ln.quantity for ln in lines)
            text = f"cart: {items} item(s), value {number(value)}"
            if t.value is not None:
                text += f" {compared(t.value, t.value.holds(value))}"
        case BrowsingTarget():
            text = f"viewed {t.kind} {', '.join(t.ids)} (needs {t.times}, {t.have})" \
                   f"{time_frame(t.time_frame)}"
            text = ("" if ok else "not ") + text
        case OnlineBehaviourTarget():
            text = (f"{t.kind} {t.match.rule.value} {t.match.value!r} at least {t.times} "
                    f"time(s){time_frame(t.time_frame)}")
            text = ("" if ok else "no ") + text
        case SocialTarget():
            text = f"social {t.kind} at least {t.times} time(s){time_frame(t.time_frame)}" \
                   f"{'' if t.satisfies else ' (must not)'}"
            text = text + (" holds" if ok else " does not hold")
        case DayTimeTarget():
            local = now.astimezone(ZoneInfo(t.time_zone))
            text = (f"now {local:%a %H:%M} {t.time_zone} {'inside' if ok else 'outside'} "
                    f"{'/'.join(t.weekdays)} {t.start:%H:%M}-{t.end:%H:%M}")
        case AttributeTarget():
            text = _attribute(t, state)
    return Verdict(ok, text)


def _attribute(t: AttributeTarget, state: CustomerState) -> str:
    if t.field.startswith("attributes."):
        raw = state.profile.attributes.get(t.field.removeprefix("attributes."))
    else:
        raw = getattr(state.profile, t.field, None)
    have = "no value" if raw in (None, "") else repr(str(raw))
    wanted = "" if t.value is None else f" {t.value!r}"
    return f"{t.field} is {have}; needs {t.op.replace('_', ' ')}{wanted}"


def _when(at: datetime | None, activity: Activity) -> str:
    return f"{at.astimezone(activity.zone):%Y-%m-%d %H:%M} {activity.time_zone}" if at else "-"

