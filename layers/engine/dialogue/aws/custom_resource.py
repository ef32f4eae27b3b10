"""A CloudFormation custom resource's answer: a PUT of its outcome to the presigned URL the
request carries. Without an answer CloudFormation waits an hour, so every request is answered,
failures included."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

Put = Callable[[str, bytes], None]


def put(url: str, body: bytes) -> None:
    # The presigned URL is signed without a content type: send none.
    request = urllib.request.Request(url, data=body, method="PUT",
                                     headers={"Content-Type": "",
                                              "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def answer(event: dict[str, Any], reason: str | None, send: Put = put) -> dict[str, Any]:
    """SUCCESS when `reason` is None, FAILED with it otherwise (CloudFormation shows it)."""
    body = {
        "Status": "SUCCESS" if reason is None else "FAILED",
        "Reason": reason or "checked",
        "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
        "StackId": event["StackId"], "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    send(event["ResponseURL"], json.dumps(body).encode())
    return body
