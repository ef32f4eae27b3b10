"""An activity as an SVG flow diagram: one box per element, its counter in it, arrows between.

Layout: networkx places each element in the layer of its distance from the trigger
(`bfs_layers`: cycle-safe, an element reached by two paths sits under the nearer one); within a
layer, elements follow their parents' order (one barycentre pass), which keeps branch paths side
by side. Graphviz's `dot` would do better crossings but is a system package `make demo` would
have to install; a flat dialogue of a few dozen elements needs no more than this.
Each box carries a <title>: the element's conditions, shown on hover in a browser.
"""

from __future__ import annotations

from html import escape
from typing import Any

import networkx as nx

from dialogue.engine.explain_triggers import compared, time_frame
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

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 250, 70, 40, 56, 20
COLOURS = {"trigger": "#d9f2e3", "condition": "#fff4cc", "wait": "#e8e8e8",
           "action": "#dce9fb"}


def edges(activity: Activity) -> list[tuple[str, str, str]]:
    """(from, to, label): `next`, each branch path by name, each timeout."""
    out = []
    for el in activity.elements:
        if isinstance(el, Branch):
            out += [(el.id, p.next, p.name + (f" ({p.percent}%)" if p.percent else ""))
                    for p in el.paths if p.next]
        elif el.next:
            out.append((el.id, el.next, ""))
        timeout = getattr(el, "timeout", None)
        if timeout is not None and timeout.next:
            out.append((el.id, timeout.next, f"after {timeout.amount} {timeout.unit}"))
    return out


def layout(activity: Activity) -> dict[str, tuple[int, int]]:
    """element → (column, row)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(e.id for e in activity.elements)
    graph.add_edges_from((a, b) for a, b, _ in edges(activity) if b in activity.by_id)
    layers = list(nx.bfs_layers(graph, [activity.entry.id]))
    placed = {n for layer in layers for n in layer}
    unreachable = [e.id for e in activity.elements if e.id not in placed]
    if unreachable:
        layers.append(unreachable)
    where: dict[str, tuple[int, int]] = {}
    for row, layer in enumerate(layers):
        def parent_column(n: str) -> float:
            cols = [where[p][0] for p in graph.predecessors(n) if p in where]
            return sum(cols) / len(cols) if cols else 0.0
        ordered = sorted(layer, key=lambda n: (parent_column(n), _position(activity, n)))
        for col, n in enumerate(ordered):
            where[n] = (col, row)
    return where


def _position(activity: Activity, element_id: str) -> int:
    return next(i for i, e in enumerate(activity.elements) if e.id == element_id)


def kind_of(el: Element) -> str:
    if isinstance(el, TargetElement | Branch):
        return "condition"
    if isinstance(el, Wait):
        return "wait"
    if isinstance(el, SendMessage | IssueCoupon | AddToSegment | RemoveFromSegment):
        return "action"
    return "trigger"


def describe(el: Element) -> str:
    """One short line under the element's name: what it does."""
    match el:
        case SendMessage():
            return f"{el.channel} · {el.template}"
        case IssueCoupon():
            return f"coupon {el.promotion} · {el.valid_days} days"
        case AddToSegment():
            return f"add to {el.segment}" + (f" · {el.for_days} days" if el.for_days else "")
        case RemoveFromSegment():
            return f"remove from {el.segment}"
        case Wait():
            return f"wait {el.amount} {el.unit}"
        case TargetElement():
            return f"target · {len(el.conditions)} condition(s)"
        case Branch():
            return f"branch · {el.mode}"
    return el.type.replace("_", " ")


def conditions(el: Element) -> str:
    """The element's settings, readable: the box's hover text."""
    def one(c: Any) -> str:
        if c.type == "purchase_history":
            return (f"purchase history: {c.measure} {c.aggregate} {compared(c.compare, True)}"
                    f"{time_frame(c.time_frame)}")
        if c.type == "segment":
            return f"segment ({c.match}): {', '.join(c.segments)}"
        return c.model_dump_json(exclude_defaults=True)

    if isinstance(el, TargetElement):
        return "\n".join(one(c) for c in el.conditions)
    if isinstance(el, Branch):
        return "\n".join(f"{p.name}: " + (" and ".join(one(c) for c in p.conditions) or "-")
                         for p in el.paths)
    return el.model_dump_json(exclude={"id", "label", "next"}, exclude_none=True)


def svg(activity: Activity, counts: dict[str, int] | None = None) -> str:
    """The diagram; `counts`: customers who reached each element (shown in its box)."""
    counts = counts or {}
    where = layout(activity)
    cols = max(c for c, _ in where.values()) + 1
    rows = max(r for _, r in where.values()) + 1
    width, height = MARGIN * 2 + cols * (BOX_W + GAP_X), MARGIN * 2 + rows * (BOX_H + GAP_Y)

    def xy(n: str) -> tuple[int, int]:
        c, r = where[n]
        return MARGIN + c * (BOX_W + GAP_X), MARGIN + r * (BOX_H + GAP_Y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="flow" data-activity='
             f'"{escape(activity.id)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
             '</defs>']
    for a, b, label in edges(activity):
        if b not in where:
            continue
        (x1, y1), (x2, y2) = xy(a), xy(b)
        sx, sy, ex, ey = x1 + BOX_W / 2, y1 + BOX_H + 0.0, x2 + BOX_W / 2, y2 + 0.0
        if ey <= sy:  # back or sideways: leave from the side
            sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2 + BOX_W, y2 + BOX_H / 2
        parts.append(f'<path d="M{sx},{sy} C{sx},{(sy + ey) / 2} {ex},{(sy + ey) / 2} {ex},{ey}"'
                     ' fill="none" stroke="#555" marker-end="url(#arrow)"/>')
        if label:  # just above the box it leads to: labels of sibling paths never overlap
            parts.append(f'<text x="{x2 + 8}" y="{y2 - 6}" fill="#7a4b00">'
                         f'{escape(_cut(label, 36))}</text>')
    for el in activity.elements:
        x, y = xy(el.id)
        n = counts.get(el.id, 0)
        parts.append(
            f'<g class="element" data-element="{escape(el.id)}" data-count="{n}">'
            f'<title>{escape((el.label or el.id) + chr(10) + conditions(el))}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="{COLOURS[kind_of(el)]}" stroke="#666"/>'
            f'<text x="{x + 10}" y="{y + 20}" font-weight="bold">'
            f'{escape(_cut(el.label or el.id, 32))}</text>'
            f'<text x="{x + 10}" y="{y + 38}" fill="#333">{escape(_cut(describe(el), 36))}</text>'
            f'<text x="{x + 10}" y="{y + 58}" class="count" fill="#0b5394">'
            f'{n} customer{"" if n == 1 else "s"}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _cut(text: str, n: int) -> str:
    """At most `n` characters; the whole text stays in the box's hover title."""
    return text if len(text) <= n else text[:n - 1] + "…"
