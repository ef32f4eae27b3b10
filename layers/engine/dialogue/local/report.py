"""`dialogue report`: one self-contained HTML page of a stack (local or deployed).

Every activity's diagram with its counters, segment sizes over time as charts, message
outcomes, the daily checks. No script, font or style is fetched: the file opens offline and
can be mailed. `dialogue serve` renders the same page from the live tables.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from jinja2 import Environment

from dialogue.aws.stats import segment_stats
from dialogue.engine.catalog import Catalog
from dialogue.local import diagram, insight
from dialogue.local.progress import Progress

CHART_W, CHART_H = 360, 90


def collect(ddb: Any, ref: insight.StackRef, catalog: Catalog, today: date, days: int = 30,
            progress: Progress | None = None) -> dict[str, Any]:
    """Everything the page shows, read from the stack's tables."""
    progress = progress or Progress(0, "report", quiet=True)
    activities: list[dict[str, Any]] = []
    rows = insight.Rows.read(ddb, ref)
    for activity in sorted(catalog.activities.values(), key=lambda a: a.id):
        stats = insight.activity_stats(ddb, ref, activity, rows=rows, days=days)
        activities.append({"id": activity.id, "name": activity.name,
                           "description": activity.description, "state": activity.state,
                           "stats": stats, "svg": diagram.svg(activity, stats["reached"])})
        progress.step()
    segments = []
    for segment in sorted(catalog.segments.values(), key=lambda s: s.id):
        stats = segment_stats(ddb, ref.table, segment.id, ref.segment_shards, today, days)
        changed = any(d["entered"] or d["left"] for d in stats["days"])
        segments.append({"id": segment.id, "name": segment.name, "size": stats["size"],
                         "days": stats["days"], "chart": chart(stats["days"]),
                         "active": bool(stats["size"] or changed)})
        progress.step()
    outcomes: Counter[tuple[str, str]] = Counter()
    for a in activities:
        for m in a["stats"]["messages"]:
            outcomes[(m["status"], m["reason"])] += m["count"]
    runs = sorted((_run(item) for item in insight.scan_prefix(ddb, ref.table, "DAILY#")),
                  key=lambda r: r["day"], reverse=True)
    return {"activities": activities, "segments": segments, "today": today.isoformat(),
            "outcomes": [{"status": s, "reason": r, "count": n}
                         for (s, r), n in sorted(outcomes.items())],
            "daily_runs": runs, "generated": datetime.now().astimezone().isoformat("T", "seconds"),
            "time_zone": ref.time_zone}


def _run(item: dict[str, Any]) -> dict[str, str]:
    return {"day": item["pk"]["S"].removeprefix("DAILY#"),
            "status": item.get("status", {}).get("S", ""),
            "started_at": item.get("started_at", {}).get("S", ""),
            "segments": item.get("segments", {}).get("N", "")}


def chart(days: list[dict[str, Any]]) -> str:
    """Segment size per day as an SVG bar chart (data in each bar's title and data-size)."""
    top = max([d["size"] for d in days] + [1])
    step = CHART_W / max(len(days), 1)
    bars = []
    for i, d in enumerate(days):
        h = round((CHART_H - 14) * d["size"] / top, 1)
        bars.append(f'<rect x="{i * step:.1f}" y="{CHART_H - 14 - h}" width="{step * 0.8:.1f}" '
                    f'height="{h}" fill="#4a86e8" data-size="{d["size"]}"><title>{d["day"]}: '
                    f'{d["size"]} members, +{d["entered"]} -{d["left"]}</title></rect>')
    first, last = (days[0]["day"], days[-1]["day"]) if days else ("", "")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{CHART_W}" '
            f'height="{CHART_H}" font-family="sans-serif" font-size="10">{"".join(bars)}'
            f'<text x="0" y="{CHART_H - 2}">{first}</text><text x="{CHART_W}" '
            f'y="{CHART_H - 2}" text-anchor="end">{last} (max {top})</text></svg>')


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>dialogue report {{ today }}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:40px}
.activity{margin:24px 0;padding:12px;border:1px solid #ddd;border-radius:8px}
.flowbox{overflow-x:auto}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left}.num{text-align:right}.muted{color:#888}
.segments{display:flex;flex-wrap:wrap;gap:18px}.segment{border:1px solid #ddd;padding:8px;
border-radius:6px}
</style></head><body>
<h1>dialogue: what the activities did</h1>
<p class="muted">Generated {{ generated }}; shop time zone {{ time_zone }};
counters are customers who reached each element, since the activity started; per day in
the shop's time zone.</p>
<h2>Activities</h2>
{% for a in activities %}
<section class="activity" id="activity-{{ a.id }}" data-activity="{{ a.id }}">
<h3>{{ a.name }} <span class="muted">({{ a.id }}{% if a.state != 'active' %},
{{ a.state }}{% endif %})</span></h3>
<p>{{ a.description }}</p>
<p>{{ a.stats.entries }} entries · {{ a.stats.exits.values() | sum }} exits ·
{{ a.stats.coupons }} coupons ·
{{ a.stats.messages | sum(attribute='count') }} messages
{% if a.stats.waiting %}· waiting now: {% for el, n in a.stats.waiting.items() %}{{ n }} at
{{ el }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}</p>
<div class="flowbox">{{ a.svg | safe }}</div>
{% set c = a.stats.controls %}{% if a.stats.exits or c.values() | select | list %}
<table class="controls"><tr><th>exits and controls</th><th>reason</th><th class="num">count</th>
</tr>{% for why, n in a.stats.exits.items() %}<tr data-exit="{{ why }}"><td>exit</td>
<td>{{ why }}</td><td class="num">{{ n }}</td></tr>{% endfor %}
{% for kind, per in c.items() %}{% for why, n in per.items() %}<tr data-control="{{ kind }}">
<td>{{ kind | replace('_', ' ') }}</td><td>{{ why }}</td><td class="num">{{ n }}</td></tr>
{% endfor %}{% endfor %}</table>{% endif %}
{% if a.stats.holdout %}{% set h = a.stats.holdout %}<table class="holdout"><tr><th>group</th>
<th class="num">entries</th><th class="num">reached goal</th><th class="num">conversion</th></tr>
{% for g in ('treated', 'holdout') %}<tr data-group="{{ g }}"><td>{{ g }}{% if g == 'holdout'
and h.percent %} ({{ h.percent }} %){% endif %}</td><td class="num">{{ h[g].entries }}</td>
<td class="num">{{ h[g].reached_goal }}</td><td class="num">{% if h[g].conversion is none %}-{%
else %}{{ '%.1f' | format(h[g].conversion * 100) }} %{% endif %}</td></tr>{% endfor %}
</table>{% endif %}
{% if a.stats.per_day %}<table class="per-day"><tr><th>day</th><th class="num">entries</th>
<th>reached</th><th>exits</th></tr>{% for d in a.stats.per_day %}<tr data-day="{{ d.day }}"
data-entries="{{ d.entries }}"><td>{{ d.day }}</td><td class="num">{{ d.entries }}</td><td>{%
for el, n in d.reached.items() %}{{ el }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor
%}</td><td>{% for why, n in d.exits.items() %}{{ why }} {{ n }}{% if not loop.last %}, {%
endif %}{% endfor %}</td></tr>{% endfor %}</table>{% endif %}
{% if a.stats.messages %}<table><tr><th>message outcome</th><th>reason</th>
<th class="num">count</th></tr>{% for m in a.stats.messages %}<tr><td>{{ m.status }}</td>
<td>{{ m.reason }}</td><td class="num">{{ m.count }}</td></tr>{% endfor %}</table>{% endif %}
</section>
{% endfor %}
<h2>Segments</h2>
<div class="segments">
{% for s in segments if s.active %}
<div class="segment" data-segment="{{ s.id }}"><b>{{ s.name }}</b> <span class="muted">
{{ s.id }}</span><br>{{ s.size }} members now<br>{{ s.chart | safe }}</div>
{% endfor %}</div>
<p class="muted">Segments with no members and no change in the period:
{% for s in segments if not s.active %}{{ s.id }}{% if not loop.last %}, {% endif %}
{% endfor %}</p>
<h2>Message outcomes</h2>
<table><tr><th>status</th><th>reason</th><th class="num">count</th></tr>
{% for m in outcomes %}<tr><td>{{ m.status }}</td><td>{{ m.reason }}</td>
<td class="num">{{ m.count }}</td></tr>{% else %}<tr><td colspan="3">no messages</td></tr>
{% endfor %}</table>
<h2>Daily checks</h2>
<table><tr><th>day</th><th>status</th><th>started (UTC)</th><th class="num">segments</th></tr>
{% for r in daily_runs %}<tr><td>{{ r.day }}</td><td>{{ r.status }}</td>
<td>{{ r.started_at }}</td><td class="num">{{ r.segments }}</td></tr>
{% else %}<tr><td colspan="4">no daily check has run</td></tr>{% endfor %}</table>
</body></html>
"""


def render(data: dict[str, Any]) -> str:
    return Environment(autoescape=True).from_string(PAGE).render(**data)
