"""The deploy-time settings check: a SendTime before DailyCheckTime refuses the stack, as
CloudFormation would with the template's custom resource, and says why."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from dialogue.aws.custom_resource import answer
from dialogue.local.runtime import ROOT, LambdaContext, LocalAws
from dialogue.settings import BadSetting

sys.path.insert(0, str(ROOT / "functions" / "daily_segment_check"))
import settings_check_handler  # noqa: E402 - the function's own module, from its code dir


@pytest.fixture
def cloudformation() -> Iterator[tuple[str, list[tuple[dict[str, str], dict[str, Any]]]]]:
    """A stand-in for the presigned URL CloudFormation waits on: the PUTs it receives."""
    received: list[tuple[dict[str, str], dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/answer?X-Amz-Signature=x", received
    server.shutdown()


def request(url: str, kind: str = "Create", **properties: str) -> dict[str, Any]:
    return {"RequestType": kind, "ResponseURL": url, "StackId": "arn:stack/shop",
            "RequestId": "r-1", "LogicalResourceId": "SettingsCheck",
            "ResourceType": "Custom::SettingsCheck", "ResourceProperties": properties}


def context() -> LambdaContext:
    return LambdaContext("SettingsCheckFunction", "req-1",
                         invoked_function_arn="arn:aws:lambda:eu-west-1:1:function:check")


def test_a_send_time_before_the_daily_check_fails_the_deployment_with_the_reason(
        cloudformation: tuple[str, list[Any]]) -> None:
    url, received = cloudformation

    settings_check_handler.handler(request(url, DailyCheckTime="02:00", SendTime="01:30"),
                                   context())

    [(headers, body)] = received
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("SendTime 01:30 is earlier than DailyCheckTime 02:00")
    assert (body["RequestId"], body["LogicalResourceId"]) == ("r-1", "SettingsCheck")
    assert headers.get("Content-Type", "") == ""  # the presigned URL is signed without one


def test_settings_in_order_pass_and_a_deletion_is_never_held_back(
        cloudformation: tuple[str, list[Any]]) -> None:
    url, received = cloudformation

    settings_check_handler.handler(request(url, DailyCheckTime="02:00", SendTime="09:00"),
                                   context())
    settings_check_handler.handler(request(url, "Delete", DailyCheckTime="02:00",
                                           SendTime="01:00"), context())
    settings_check_handler.handler(request(url, "Update", DailyCheckTime="2am",
                                           SendTime="09:00"), context())

    assert [b["Status"] for _, b in received] == ["SUCCESS", "SUCCESS", "FAILED"]
    assert "DailyCheckTime '2am' is not HH:MM" in received[2][1]["Reason"]


def test_quiet_hours_that_make_no_window_fail_the_deployment_with_the_reason(
        cloudformation: tuple[str, list[Any]]) -> None:
    url, received = cloudformation
    times = {"DailyCheckTime": "02:00", "SendTime": "09:00"}

    settings_check_handler.handler(request(url, **times, QuietHours="21:00-08:00",
                                           BlackoutDates="2027-12-24,2027-12-25"), context())
    settings_check_handler.handler(request(url, **times, QuietHours="09:00-09:00",
                                           BlackoutDates=""), context())
    settings_check_handler.handler(request(url, "Update", **times, QuietHours="",
                                           BlackoutDates="2027-02-30"), context())

    assert [b["Status"] for _, b in received] == ["SUCCESS", "FAILED", "FAILED"]
    assert "'start' and 'end' are the same time" in received[1][1]["Reason"]
    assert "BlackoutDates '2027-02-30'" in received[2][1]["Reason"]


def test_the_local_runtime_refuses_the_stack_as_cloudformation_would() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    before = dict(os.environ)

    with pytest.raises(BadSetting, match="SettingsCheck: SendTime 01:00 is earlier than "
                                         "DailyCheckTime 02:00"):
        LocalAws(stack_name="refused", parameters={"SendTime": "01:00"}).start()

    assert dict(os.environ) == before  # nothing left running or set


def test_an_answer_names_the_resource_it_was_created_as() -> None:
    sent: list[tuple[str, bytes]] = []
    event = {**request("https://cloudformation.example/answer"),
             "PhysicalResourceId": "SettingsCheck-1"}

    body = answer(event, None, send=lambda url, data: sent.append((url, data)))

    assert body["PhysicalResourceId"] == "SettingsCheck-1"
    assert json.loads(sent[0][1]) == body


def test_required_parameters_left_empty_refuse_the_stack_with_the_reason() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with pytest.raises(BadSetting, match="Parameter UnsubscribeUrl '' is required, an https://"):
        LocalAws(stack_name="no-url", parameters={"UnsubscribeUrl": ""}).start()


def test_the_unsubscribe_secret_is_generated_by_the_stack_and_read_by_send_message() -> None:
    """No template value: Secrets Manager generates it, send_message gets only its ARN and
    signs links with what it reads there (the shop's page checks them with the same)."""
    from dialogue import bootstrap

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws = LocalAws(stack_name="secret").start()
    try:
        send = next(f for f in aws.s.functions if f.logical == "SendMessageFunction")
        arn = send.environment["UNSUBSCRIBE_SECRET_ARN"]
        stored = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        os.environ.update(send.environment)

        signing = bootstrap.delivery_service().settings.unsubscribe_secret

        assert "UNSUBSCRIBE_SECRET" not in send.environment and len(stored) == 64
        assert signing == stored.encode()
    finally:
        aws.stop()
