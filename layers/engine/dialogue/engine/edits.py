"""What an edit of a live activity does to the customers waiting in it (`dialogue validate
--against OLD.json`), by the rules the engine applies (`wake.resume`, `daily`, `controls`).

Customers wait at a wait or at a later trigger, known by the element's id: an element kept under
its id keeps them (a wait keeps the due time set when they parked; a trigger that lost its
timeout keeps them waiting for its event); an element removed moves them to the element the new
version's `moved` names, or ends their run, counted (`@ended:element_removed`). A message is
never sent twice to one entry: its job is keyed by activity, element, customer and entry.
"""

from __future__ import annotations

from dialogue.model.activity import Activity, Element, Trigger, Wait

from .controls import ENDED_REMOVED


def edit_report(old: Activity, new: Activity) -> list[str]:
    """One line per element customers may be waiting at in `old`, then the activity's state."""
    lines = [f"activity {new.id}: version {old.version} → {new.version}"]
    for i, element in enumerate(old.elements):
        if i == 0 or not isinstance(element, Wait | Trigger):
            continue  # nobody waits at the first trigger or at an action
        lines.append(f"  waiting at {element.id!r} ({_what(element)}): "
                     f"{_fate(element, new.by_id.get(element.id), new)}")
    if old.state != new.state:
        lines.append(f"  state {old.state} → {new.state}: " + {
            "paused": "nobody enters or goes on until it is active again",
            "inactive": "nobody enters; customers waiting leave without any action",
            "active": "entries and waiting customers go on" + (
                f" (waits that ran out while paused: {new.on_resume})"
                if old.state == "paused" else "")}[new.state])
    if old.entry.model_dump() != new.entry.model_dump():
        lines.append(f"  the first element changed: new entries follow {new.entry.id!r}; "
                     "customers already in keep their places")
    return lines


def _what(element: Element) -> str:
    if isinstance(element, Wait):
        return f"a wait of {element.amount} {element.unit}"
    timeout = element.timeout if isinstance(element, Trigger) else None
    return f"{element.type}" + (f", timeout {timeout.amount} {timeout.unit}" if timeout else "")


def _fate(old: Element, now: Element | None, new: Activity) -> str:
    if now is None or not isinstance(now, Wait | Trigger) or type(now) is not type(old):
        target = new.moved.get(old.id)
        why = "removed" if now is None else f"now a {now.type}"
        if target is not None:
            return f"{why}: they go on at {target!r} (counted @moved)"
        return (f"{why}: their run ends, counted {ENDED_REMOVED}; name an element in "
                f"\"moved\" to keep them")
    parts = ["keep their place"]
    if isinstance(old, Wait) and isinstance(now, Wait) \
            and (old.amount, old.unit) != (now.amount, now.unit):
        parts.append(f"their wait still ends when first set (new entries wait "
                     f"{now.amount} {now.unit})")
    if isinstance(old, Trigger) and isinstance(now, Trigger):
        if old.timeout is not None and now.timeout is None:
            parts.append("no timeout any more: they wait for the event only")
        elif old.timeout is not None and now.timeout is not None \
                and old.timeout.next != now.timeout.next:
            parts.append(f"at the timeout they go on at {now.timeout.next!r}")
    if old.next != now.next:
        parts.append(f"then go on at {now.next!r} (was {old.next!r})")
    return "; ".join(parts)
