"""moto's SQS queue attributes read one at a time, at a cost that does not grow with the queue.

moto computes every attribute of a queue whenever it needs one: `SendMessage` reads
`ContentBasedDeduplication`, `ReceiveMessage` reads `MessageRetentionPeriod` for each message,
and each time moto builds the whole dict, converting 14 to 20 names from CamelCase and counting
the queue's messages three times (visible, in flight, delayed), looking at every message's
timers. A queue that keeps messages (the outcomes tap holds every outcome of a run) makes each
send cost more than the last; at 1,000 customers this was a quarter of the embedded AWS's CPU.

Here `Queue.attributes` is a read-only mapping with the same names, in the same order, with the
same values (booleans as "true"/"false", the redrive policy as JSON), each computed when read:
reading one attribute costs one attribute, and `GetQueueAttributes` with "All" still counts the
messages once per count, as before. Nothing AWS does changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any


class QueueAttributes(Mapping[str, Any]):
    """A queue's attributes as moto's `Queue.attributes` gives them, computed on reading."""

    def __init__(self, queue: Any):
        self.queue = queue

    def _names(self) -> list[str]:
        queue = self.queue
        return (queue.BASE_ATTRIBUTES + (queue.FIFO_ATTRIBUTES if queue.fifo_queue else [])
                + (queue.KMS_ATTRIBUTES if queue.kms_master_key_id else []))

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        queue = self.queue
        if name == "RedrivePolicy" and queue.redrive_policy:
            return json.dumps(queue.redrive_policy)
        value = getattr(queue, _ATTRIBUTE_NAMES.get(name) or _underscored(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


_ATTRIBUTE_NAMES: dict[str, str] = {}
MOTO: dict[str, Any] = {}  # moto's own property, as found (the tests compare)


def _underscored(name: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    _ATTRIBUTE_NAMES[name] = camelcase_to_underscores(name)
    return _ATTRIBUTE_NAMES[name]


def _attributes(queue: Any) -> QueueAttributes:
    return QueueAttributes(queue)


def install() -> None:
    """Replace moto's `Queue.attributes` property (once per process)."""
    from moto.sqs.models import Queue

    if not getattr(Queue.attributes.fget, "_one_at_a_time", False):  # type: ignore[attr-defined]
        MOTO["attributes"] = Queue.attributes
        _attributes._one_at_a_time = True  # type: ignore[attr-defined]
        Queue.attributes = property(_attributes)  # type: ignore[assignment,method-assign]
