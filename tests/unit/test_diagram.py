"""Flow diagrams: every element drawn once with its counter, branch paths named, laid out."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from dialogue.local.diagram import layout, svg
from dialogue.model.activity import Activity

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "activities"


def _activity(name: str) -> Activity:
    return Activity.model_validate_json((EXAMPLES / name).read_text())


def test_each_element_is_a_box_with_its_count_and_the_paths_are_named() -> None:
    ski = _activity("01-ski-sale.json")
    drawing = svg(ski, {"skiers": 5, "recent-interest": 5, "sale-picks": 2, "sale-general": 3})
    root = ElementTree.fromstring(drawing)  # well-formed XML, as a browser needs
    boxes = {g.get("data-element"): g.get("data-count")
             for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert boxes == {"skiers": "5", "recent-interest": "5", "sale-picks": "2",
                     "sale-general": "3"}
    assert "Browsed skis this month" in drawing and "All other skiers" in drawing
    assert "email · ski-sale-picks" in drawing and "3 customers" in drawing
    # the branch's conditions are readable on hover
    assert re.search(r"<title>Did they look at skis lately\?\n"
                     r"Browsed skis this month: [^<]*browsing", drawing)


def test_paths_of_a_branch_sit_side_by_side_under_it() -> None:
    where = layout(_activity("01-ski-sale.json"))
    assert where["skiers"][1] < where["recent-interest"][1] < where["sale-picks"][1]
    assert where["sale-picks"][1] == where["sale-general"][1]
    assert where["sale-picks"][0] != where["sale-general"][0]


def test_every_example_draws() -> None:
    for path in sorted(EXAMPLES.glob("*.json")):
        activity = Activity.model_validate_json(path.read_text())
        root = ElementTree.fromstring(svg(activity))
        assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) == \
            len(activity.elements), path
