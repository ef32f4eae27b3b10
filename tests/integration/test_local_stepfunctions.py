"""State machines on embedded moto: Lambda tasks run in-process, waits on a simulated clock."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from dialogue.local import stepfunctions as sfn
from dialogue.local.runtime import LOCAL_PARAMETERS
from dialogue.local.template import REGION, Resolver, load

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = FIXTURES / "stepfunctions.yaml"
ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SHARDS = [0, 1, 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
                           "AWS_ENDPOINT_URL": url, "MOTO_PORT": str(port)}.items():
            env.setenv(key, value)
        env.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        sfn.enable_execution(url)
        yield url
        _post(url, "/moto-api/config", {"stepfunctions": {"execute_state_machine": False},
                                        "lambda": {"use_docker": True}})
        server.stop()


def _post(url: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    urllib.request.urlopen(urllib.request.Request(url + path, data=data, method="POST")).read()


@dataclass
class Local:
    """The fixture template on moto, its invokes recorded, its waits on a simulated day."""

    session: Any
    resolver: Resolver
    machines: dict[str, str]
    waits: sfn.SimulatedWaits
    router: sfn.LambdaRouter
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: dict[tuple[Any, Any], int] = field(default_factory=dict)  # (bucket, shard) → raises
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, logical: str, event: dict[str, Any]) -> Any:
        with self.lock:
            self.calls.append((logical, event))
            key = (event.get("bucket"), event.get("shard"))
            if self.failures.get(key, 0) != 0:
                self.failures[key] -= 1
                raise RuntimeError(f"shard {key} is down")
        if "countdown" in event:
            return {"heard": event["countdown"]}
        more = event["shard"] == 1 and event["cursor"] is None  # shard 1 has two pages
        return {**event, "cursor": "page-2" if more else None, "more": more}

    def start(self, bucket: str, wake_at: datetime, machine: str = "PageStateMachine") -> str:
        return str(self.session.client("stepfunctions").start_execution(
            stateMachineArn=self.machines[machine], name=bucket,
            input=json.dumps({"bucket": bucket, "shards": SHARDS,
                              "wake_at": wake_at.strftime("%Y-%m-%dT%H:%M:%SZ")}),
        )["executionArn"])

    def describe(self, arn: str) -> dict[str, Any]:
        return dict(self.session.client("stepfunctions").describe_execution(executionArn=arn))

    def pages(self, bucket: str) -> list[tuple[int, str | None]]:
        return sorted(((e["shard"], e["cursor"]) for _, e in self.calls
                       if e.get("bucket") == bucket), key=lambda p: (p[0], p[1] or ""))


@pytest.fixture
def local(endpoint: str) -> Iterator[Local]:
    _post(endpoint, "/moto-api/reset")
    session = boto3.session.Session(region_name=REGION)
    resolver = Resolver(load(TEMPLATE), f"t{uuid.uuid4().hex[:8]}", LOCAL_PARAMETERS)
    waits = sfn.SimulatedWaits(start=START).install()
    holder: list[Local] = []
    router = sfn.route_lambda_invokes(lambda name, event: holder[0].handler(name, event), resolver)
    machines = sfn.create_state_machines(session, resolver, TEMPLATE.parent)
    holder.append(Local(session, resolver, machines, waits, router))
    try:
        yield holder[0]
    finally:
        holder[0].waits.cancel_all()
        holder[0].waits.uninstall()
        router.uninstall()


def test_definitions_are_substituted_and_functions_exist(local: Local) -> None:
    client = local.session.client("stepfunctions")
    text = client.describe_state_machine(stateMachineArn=local.machines["PageStateMachine"])[
        "definition"]
    arn = sfn.function_arn(local.resolver, "PageFunction")
    assert "${" not in text and arn in text and '"of": "3"' in text
    assert local.resolver.get_att("PageFunction", "Arn") == arn
    assert local.session.client("lambda").get_function(FunctionName=arn)
    inline = client.describe_state_machine(stateMachineArn=local.machines["CountdownStateMachine"])
    assert json.loads(inline["definition"])["States"]["Tell"]["Parameters"]["FunctionName"] == arn


def test_a_direct_invoke_runs_the_handler(local: Local) -> None:
    out = local.session.client("lambda").invoke(
        FunctionName=sfn.function_name(local.resolver, "PageFunction"),
        Payload=json.dumps({"countdown": 3}))
    assert json.loads(out["Payload"].read()) == {"heard": 3}
    assert local.calls == [("PageFunction", {"countdown": 3})]
    local.failures[(None, None)] = 1
    out = local.session.client("lambda").invoke(
        FunctionName=sfn.function_name(local.resolver, "PageFunction"), Payload="{}")
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorType"] == "RuntimeError"


def test_waits_follow_the_simulated_clock(local: Local) -> None:
    first, second = START + timedelta(hours=1), START + timedelta(days=1, hours=1)
    a, b = local.start("a", first), local.start("b", second)
    local.waits.wait_idle()
    assert local.calls == []
    assert local.waits.pending() == [first, second]

    began = time.monotonic()
    local.waits.advance_to(first)
    took = time.monotonic() - began
    assert local.pages("a") == [(0, None), (1, None), (1, "page-2"), (2, None)]
    assert local.pages("b") == []
    assert local.describe(a)["status"] == "SUCCEEDED"
    assert local.describe(b)["status"] == "RUNNING"
    assert local.waits.pending() == [second]

    local.waits.advance_to(second - timedelta(seconds=1))  # not yet
    assert local.pages("b") == []
    local.waits.advance_to(second)
    assert local.pages("b") == [(0, None), (1, None), (1, "page-2"), (2, None)]
    assert local.describe(b)["status"] == "SUCCEEDED"
    assert local.waits.pending() == []

    late = local.start("late", first)  # its time has passed on the simulated clock: at once
    local.waits.wait_idle()
    assert local.describe(late)["status"] == "SUCCEEDED"
    assert len(local.pages("late")) == 4
    assert took < 5, took


def test_a_failing_handler_is_retried_per_the_retry_policy(local: Local) -> None:
    local.failures[("flaky", 0)] = 2  # fails twice, then works: MaxAttempts 2 is enough
    local.failures[("broken", 2)] = 99  # never works: the Map, so the execution, fails
    flaky, broken = local.start("flaky", START), local.start("broken", START)
    local.waits.wait_idle()
    assert [p for p in local.pages("flaky") if p[0] == 0] == [(0, None)] * 3
    assert local.describe(flaky)["status"] == "SUCCEEDED"
    assert [p for p in local.pages("broken") if p[0] == 2] == [(2, None)] * 3
    failed = local.describe(broken)
    assert failed["status"] == "FAILED" and failed["error"] == "RuntimeError", failed
    assert sorted(local.waits.retry_delays) == [2, 2, 4, 4]  # IntervalSeconds 2, BackoffRate 2


def test_seconds_waits_count_from_the_clock_when_entered(local: Local) -> None:
    clock = {"at": START}
    local.waits.uninstall()
    local.waits = sfn.SimulatedWaits(clock=lambda: clock["at"]).install()
    sm = local.session.client("stepfunctions")
    run = sm.start_execution(stateMachineArn=local.machines["CountdownStateMachine"],
                             input=json.dumps({"seconds": 600}))["executionArn"]
    local.waits.wait_idle()
    assert local.waits.pending() == [START + timedelta(minutes=10)]
    clock["at"] = START + timedelta(minutes=5)
    local.waits.advance_to(clock["at"])
    assert local.calls == []
    clock["at"] = START + timedelta(minutes=10)
    local.waits.advance_to(clock["at"])
    assert local.calls == [("PageFunction", {"countdown": 600})]
    assert local.describe(run)["status"] == "SUCCEEDED"


def test_a_stopped_execution_leaves_its_wait(local: Local) -> None:
    run = local.start("stopped", START + timedelta(days=3))
    local.waits.wait_idle()
    assert local.waits.pending() == [START + timedelta(days=3)]
    local.session.client("stepfunctions").stop_execution(executionArn=run)
    local.waits.wait_idle()
    assert local.waits.pending() == []
    assert local.describe(run)["status"] == "ABORTED"
    assert local.calls == []


def test_the_production_template_state_machines_are_created(endpoint: str) -> None:
    session = boto3.session.Session(region_name=REGION)
    resolver = Resolver(load(ROOT / "infra" / "template.yaml"), f"p{uuid.uuid4().hex[:8]}",
                        LOCAL_PARAMETERS)
    sfn.enable_execution(endpoint)
    machines = sfn.create_state_machines(session, resolver, ROOT / "infra")
    assert machines, "the template has a state machine"
    assert sfn.create_state_machines(session, resolver, ROOT / "infra") == machines  # again: same
    for logical, arn in machines.items():
        text = session.client("stepfunctions").describe_state_machine(stateMachineArn=arn)[
            "definition"]
        assert "${" not in text, logical
        assert arn == sfn.state_machine_arn(resolver, logical)


def test_waits_inside_map_iterations_block_and_release_one_by_one(local: Local) -> None:
    arn = sfn.function_arn(local.resolver, "PageFunction")
    machine = local.session.client("stepfunctions").create_state_machine(
        name=f"{local.resolver.stack}-map-waits", roleArn="arn:aws:iam::123456789012:role/r",
        definition=json.dumps({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.delays", "End": True,
            "ItemSelector": {"seconds.$": "$$.Map.Item.Value"},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Sleep",
                              "States": {
                "Sleep": {"Type": "Wait", "SecondsPath": "$.seconds", "Next": "Tell"},
                "Tell": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                         "Parameters": {"FunctionName": arn,
                                        "Payload": {"countdown.$": "$.seconds"}},
                         "End": True}}}}}}))["stateMachineArn"]
    run = local.session.client("stepfunctions").start_execution(
        stateMachineArn=machine, input=json.dumps({"delays": [3600, 7200, 10800]}))["executionArn"]
    local.waits.wait_idle()
    hour = timedelta(hours=1)
    assert local.waits.pending() == [START + hour, START + 2 * hour, START + 3 * hour]
    local.waits.advance_to(START + 2 * hour)
    assert sorted(e["countdown"] for _, e in local.calls) == [3600, 7200]
    assert local.waits.pending() == [START + 3 * hour]
    assert local.describe(run)["status"] == "RUNNING"
    local.waits.advance_to(START + 3 * hour)
    assert sorted(e["countdown"] for _, e in local.calls) == [3600, 7200, 10800]
    assert local.describe(run)["status"] == "SUCCEEDED"
