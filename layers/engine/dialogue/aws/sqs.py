"""Rejected events: kept on the events dead-letter queue with the reason, for an operator."""

from __future__ import annotations

import hashlib
from typing import Any


class SqsRejectedEvents:
    """The body is kept as it came (a redrive to the source queue replays it unchanged); why it
    is here rides in message attributes: `reason`, `event_id`, `kind` (`rejected`: invalid;
    `poisoned` / `transient`: failed at its last receive). On a FIFO queue the message keeps
    its customer's group, so a redrive keeps that customer's events in order."""

    def __init__(self, client: Any, queue_url: str):
        self._sqs, self._url = client, queue_url

    def reject(self, body: str, event_id: str | None, reasons: list[str],
               kind: str = "rejected", group: str | None = None) -> None:
        digest = hashlib.sha256(body.encode()).hexdigest()
        reason = "; ".join(reasons)[:1000]
        extra: dict[str, Any] = {}
        if self._url.endswith(".fifo"):
            extra = {"MessageGroupId": group or "rejected", "MessageDeduplicationId": digest}
        self._sqs.send_message(
            QueueUrl=self._url, MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason or "-"},
                               "event_id": {"DataType": "String",
                                            "StringValue": event_id or "unknown"},
                               "kind": {"DataType": "String", "StringValue": kind}},
            **extra)


class SqsRequeue:
    """Puts released jobs back on the messages queue, ten to a call."""

    def __init__(self, client: Any, queue_url: str):
        self._sqs, self._url = client, queue_url

    def send(self, bodies: list[str]) -> None:
        for i in range(0, len(bodies), 10):
            chunk = bodies[i:i + 10]
            result = self._sqs.send_message_batch(QueueUrl=self._url, Entries=[
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)])
            if result.get("Failed"):  # the next run releases them again; say so now
                raise RuntimeError(f"{len(result['Failed'])} released jobs not queued")


def backoff_seconds(receive_count: int) -> int:
    """15 s, 30 s, 1 min, 2 min… at most 15 min: a throttled provider gets room to recover."""
    return int(min(15 * 2 ** max(receive_count - 1, 0), 900))


class SqsBackoff:
    """Makes one received message visible again only after its back-off."""

    def __init__(self, client: Any, queue_url: str):
        self._sqs, self._url = client, queue_url

    def later(self, receipt_handle: str, receive_count: int) -> None:
        self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=backoff_seconds(receive_count))
