"""The active activities and segments, indexed so an event only meets the triggers it can fire."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dialogue.model.activity import Activity, EventTrigger, trigger_event
from dialogue.model.segment import Segment


class Catalog:
    def __init__(self, activities: Iterable[Activity] = (), segments: Iterable[Segment] = ()):
        self.activities: dict[str, Activity] = {a.id: a for a in activities}
        self.segments: dict[str, Segment] = {s.id: s for s in segments}
        self._entries: dict[str, list[tuple[Activity, EventTrigger]]] = defaultdict(list)
        for activity in self.activities.values():
            detail_type = trigger_event(activity.entry)
            if detail_type is not None:
                self._entries[detail_type].append((activity, activity.entry))  # type: ignore[arg-type]

    def entries_for(self, detail_type: str) -> list[tuple[Activity, EventTrigger]]:
        """Activities whose first element this kind of event can fire: O(matching), not O(all)."""
        return self._entries.get(detail_type, [])

    def get(self, activity_id: str) -> Activity | None:
        return self.activities.get(activity_id)

    def segment_name(self, segment_id: str) -> str:
        seg = self.segments.get(segment_id)
        return seg.name if seg else segment_id
