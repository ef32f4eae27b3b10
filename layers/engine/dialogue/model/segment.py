"""Segments: named groups of customers. This release ships *managed* segments (changed by
activities' add/remove actions); rule-based segments come with the segments issue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Id, Strict


class Segment(Strict):
    schema_version: Literal[1] = 1
    id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    kind: Literal["managed"] = "managed"
    # Only segments marked so may be changed by add/remove actions (validation enforces it).
    managed_by_activities: bool = True
