"""Failures seen: each failed item logged at ERROR (its id and exception, no personal data),
counted by kind, and what cannot be processed kept with its reason.

Events (`EventRecords`): a failed event fails its SQS record, so SQS delivers it again in order
and the customer's later events wait behind it (the FIFO group is held). At its last receive
(the queue's maxReceiveCount, `EVENT_MAX_RECEIVES`) it is sent to the events dead-letter queue
by this code, with its reason, and reported done: the customer's later events then go on. The
body is kept as it came, so a redrive puts the event back on the events queue unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dialogue.ports import Conflict

# infra/template.yaml, EventsQueue's RedrivePolicy: SQS moves a message to the dead-letter
# queue when it is received once more, so the handler acts at this receive.
EVENT_MAX_RECEIVES = 5

# Error codes AWS answers when trying again later may succeed.
_TRANSIENT_CODES = {"ThrottlingException", "ProvisionedThroughputExceededException",
                    "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
                    "TransactionConflictException", "TransactionInProgressException",
                    "SlowDown", "RequestTimeout"}


def failure_kind(error: BaseException) -> str:
    """The metric's kind: `transient` (a write conflict, AWS throttling or unavailable, a
    network error: a later try may pass) or `poisoned` (the same input fails the same way)."""
    if isinstance(error, Conflict) or type(error).__name__ == "TooManyConflicts":
        return "transient"
    response = getattr(error, "response", None)  # botocore's ClientError, without botocore
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        return "transient" if code in _TRANSIENT_CODES else "poisoned"
    if isinstance(error, TimeoutError | ConnectionError) \
            or type(error).__module__.startswith(("botocore", "urllib3")):
        return "transient"  # a connection or read timeout, an endpoint not reached
    return "poisoned"


def reason_of(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


def opaque(subject: str) -> str:
    """A customer named in logs without their id: the same customer, the same name."""
    return hashlib.blake2b(subject.encode(), digest_size=8).hexdigest()


class DeadLetters(Protocol):
    def reject(self, body: str, event_id: str | None, reasons: list[str],
               kind: str = "rejected", group: str | None = None) -> None: ...


@dataclass
class EventRecords:
    """One record of the events queue through `handle`, its failure seen."""

    handle: Callable[[str], Any]  # EventService.handle
    dead_letters: DeadLetters
    count: Callable[[str, int], None]
    log_error: Callable[..., None]  # logger.error; `exc_info` and `extra` are passed
    max_receives: int = EVENT_MAX_RECEIVES

    def process(self, body: str, message_id: str, receive_count: int,
                group: str | None = None) -> Any:
        try:
            return self.handle(body)
        except Exception as error:
            kind, event_id = failure_kind(error), event_id_of(body)
            last = receive_count >= self.max_receives
            self.count(f"EventsFailed_{kind}", 1)
            self.log_error("event %s failed (%s, receive %d of %d%s): %s", event_id, kind,
                           receive_count, self.max_receives,
                           ", dead-lettered" if last else ", held for a retry in order",
                           reason_of(error), exc_info=error,
                           extra={"event_id": event_id, "shop_event_id": shop_event_id(body),
                                  "message_id": message_id,
                                  "failure_kind": kind, "receive_count": receive_count})
            if not last:
                raise
            self.dead_letters.reject(body, event_id, [reason_of(error)], kind=kind, group=group)
            self.count("EventsDeadLettered", 1)
            return "dead_lettered"


def event_id_of(body: str) -> str | None:
    """The envelope id, if there is one: names the event in errors without its content."""
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    detail = raw.get("detail")
    value = raw.get("id") or (detail.get("event_id") if isinstance(detail, dict) else None)
    return value if isinstance(value, str) else None


def shop_event_id(body: str) -> str | None:
    """The shop's own `event_id` in the detail, to find the event on the shop's side."""
    try:
        detail = json.loads(body).get("detail")
        value = detail.get("event_id") if isinstance(detail, dict) else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
