"""The template's mistakes that would not show on moto, caught before a deploy: each check runs on
the real template (no finding) and on a copy with the mistake put back (the finding named).

Also lints what AWS deploys: the template as samtranslator expands it, through cfn-lint."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dialogue.local.template import Resolver, load
from dialogue.settings import BadSetting

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
STATEFUL = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret")
FUNCTION = "AWS::Serverless::Function"

Template = dict[str, Any]


def resources(t: Template, kind: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in t["Resources"].items() if kind is None or v["Type"] == kind}


def refs(value: Any) -> set[str]:
    """Logical ids a value points at (Ref, GetAtt, ${X} or ${X.Attr} in Sub)."""
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    if "Ref" in value:
        return {value["Ref"]}
    if "Fn::GetAtt" in value:
        return {value["Fn::GetAtt"][0]}
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text = sub if isinstance(sub, str) else sub[0]
        return {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
    return set().union(*(refs(v) for v in value.values())) if value else set()


# ------------------------------------------------------------------ the checks


def json_path_in_rule_sqs_parameters(t: Template) -> list[str]:
    """A rule target's SqsParameters.MessageGroupId is a static string: a "$." path is kept
    literally, so every event lands in one group (EventBridge API: SqsParameters, String)."""
    return [f"{name}: target {target['Id']} MessageGroupId {group!r} is a JSON path"
            for name, rule in resources(t, "AWS::Events::Rule").items()
            for target in rule["Properties"].get("Targets", [])
            for group in [target.get("SqsParameters", {}).get("MessageGroupId", "")]
            if isinstance(group, str) and group.startswith("$")]


def reserved_concurrency(t: Template) -> list[str]:
    """ReservedConcurrentExecutions fails a deploy on a new account (quota 10); cap an SQS
    event source with ScalingConfig.MaximumConcurrency instead."""
    found = [f"{name}: ReservedConcurrentExecutions"
             for name, spec in resources(t).items()
             if "ReservedConcurrentExecutions" in spec.get("Properties", {})]
    if "ReservedConcurrentExecutions" in t.get("Globals", {}).get("Function", {}):
        found.append("Globals: ReservedConcurrentExecutions")
    return found


def retain_without_except_on_create(t: Template) -> list[str]:
    """Retain leaves the resources of a failed first deploy behind; stateful ones must be kept
    otherwise (RetainExceptOnCreate), the rest deleted."""
    found = [f"{name}: DeletionPolicy Retain" for name, spec in resources(t).items()
             if spec.get("DeletionPolicy") == "Retain"]
    found += [f"{name}: {spec['Type']} without DeletionPolicy RetainExceptOnCreate"
              for name, spec in resources(t).items()
              if spec["Type"] in STATEFUL and spec.get("DeletionPolicy") != "RetainExceptOnCreate"]
    return found


def secret_default(t: Template) -> list[str]:
    """No secret travels as a parameter default or an environment value."""
    found = [f"parameter {name}: a default for a secret"
             for name, spec in t.get("Parameters", {}).items()
             if "Default" in spec and (spec.get("NoEcho") or re.search("secret|password|token",
                                                                          name, re.I))]
    secrets = set(resources(t, "AWS::SecretsManager::Secret"))
    env = [(name, spec.get("Properties", {}).get("Environment", {}).get("Variables", {}))
           for name, spec in resources(t, FUNCTION).items()]
    env.append(("Globals", t.get("Globals", {}).get("Function", {}).get("Environment", {})
                .get("Variables", {})))
    found += [f"{name}: {var} is not a Secrets Manager secret's ARN"
              for name, variables in env for var, value in variables.items()
              if re.search("SECRET|PASSWORD", var) and not (refs(value) and refs(value) <= secrets)]
    return found


def required_parameters_with_defaults(t: Template) -> list[str]:
    """Example values deploy a stack that dead-letters every message: these have no default,
    and an empty value is refused by their AllowedPattern."""
    params = t.get("Parameters", {})
    return [f"parameter {name}: " + ("has a default" if "Default" in params[name]
                                     else "accepts an empty value")
            for name in ("Sender", "ShopUrl", "UnsubscribeUrl")
            if "Default" in params[name]
            or re.fullmatch(params[name].get("AllowedPattern", ".*"), "")]


def alarm_without_action(t: Template) -> list[str]:
    """An alarm that notifies nobody is no alarm: each one notifies the alarm topic."""
    return [f"{name}: no AlarmActions to the alarm topic"
            for name, spec in resources(t, "AWS::CloudWatch::Alarm").items()
            if "AlarmTopic" not in refs(spec["Properties"].get("AlarmActions", []))]


def _alarmed(t: Template, metric: str, dimension: str) -> set[str]:
    return {ref for spec in resources(t, "AWS::CloudWatch::Alarm").values()
            if spec["Properties"].get("MetricName") == metric
            for d in spec["Properties"].get("Dimensions", []) if d["Name"] == dimension
            for ref in refs(d["Value"])}


def unwatched(t: Template) -> list[str]:
    """Every DLQ (a redrive target or a DeadLetterConfig) has an alarm on its depth; every
    function on its errors and throttles; every pipe on its failed executions."""
    dlqs = set()
    for spec in resources(t).values():
        props = spec.get("Properties", {})
        dlqs |= refs(props.get("RedrivePolicy", {}).get("deadLetterTargetArn"))
        dlqs |= refs(_find(props, "DeadLetterConfig"))
    depth = _alarmed(t, "ApproximateNumberOfMessagesVisible", "QueueName")
    found = [f"{q}: a DLQ without an alarm" for q in sorted(dlqs - depth)]
    for metric in ("Errors", "Throttles"):
        watched = _alarmed(t, metric, "FunctionName")
        found += [f"{f}: no {metric} alarm" for f in resources(t, FUNCTION) if f not in watched]
    failed = _alarmed(t, "ExecutionFailed", "PipeName")
    found += [f"{p}: no ExecutionFailed alarm" for p in resources(t, "AWS::Pipes::Pipe")
              if p not in failed]
    return found


def _find(value: Any, key: str) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _find(v, key)]
    if not isinstance(value, dict):
        return []
    return ([value[key]] if key in value else []) + [x for k, v in value.items() if k != key
                                                     for x in _find(v, key)]


def stream_readers(t: Template) -> list[str]:
    """DynamoDB throttles a stream shard read by more than two processes: pipes and event
    source mappings on one table's stream, counted."""
    readers: dict[str, list[str]] = {}
    for name, spec in resources(t, "AWS::Pipes::Pipe").items():
        for table in refs(spec["Properties"]["Source"]):
            readers.setdefault(table, []).append(name)
    for name, spec in resources(t, FUNCTION).items():
        for event in spec["Properties"].get("Events", {}).values():
            if event.get("Type") in ("DynamoDB", "Kinesis"):
                for table in refs(event["Properties"]["Stream"]):
                    readers.setdefault(table, []).append(name)
    return [f"{table}'s stream: {len(names)} readers ({', '.join(names)})"
            for table, names in readers.items() if len(names) > 2]


CHECKS: list[Callable[[Template], list[str]]] = [
    reserved_concurrency, retain_without_except_on_create, secret_default,
    required_parameters_with_defaults, alarm_without_action, unwatched,
    json_path_in_rule_sqs_parameters, stream_readers]


@pytest.fixture(scope="module")
def template() -> Template:
    return load(TEMPLATE)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_template_has_none_of_the_mistakes(template: Template, check: Any) -> None:
    assert check(template) == []


def _rule() -> dict[str, Any]:
    return {"Type": "AWS::Events::Rule", "Properties": {"Targets": [{
        "Id": "q", "Arn": "arn", "SqsParameters": {"MessageGroupId": "$.detail.customer_id"}}]}}


def _pipe() -> dict[str, Any]:
    return {"Type": "AWS::Pipes::Pipe", "Properties": {"Source": {"Fn::GetAtt": ["Table",
                                                                                "StreamArn"]}}}


def _put(path: str, value: Any) -> Callable[[Template], None]:
    def put(t: Template) -> None:
        *parents, last = path.split("/")
        node = t
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return put


MISTAKES = {
    "json path in a rule's SqsParameters": (json_path_in_rule_sqs_parameters,
                                            _put("Resources/BadRule", _rule()),
                                            "MessageGroupId '$.detail.customer_id'"),
    "reserved concurrency": (reserved_concurrency, _put(
        "Resources/SendMessageFunction/Properties/ReservedConcurrentExecutions", 2),
        "SendMessageFunction: ReservedConcurrentExecutions"),
    "Retain without ExceptOnCreate": (retain_without_except_on_create, _put(
        "Resources/CustomersTable/DeletionPolicy", "Retain"), "CustomersTable: DeletionPolicy"),
    "a stateful resource without a deletion policy": (retain_without_except_on_create, _put(
        "Resources/Extra", {"Type": "AWS::S3::Bucket"}), "Extra: AWS::S3::Bucket without"),
    "a secret default": (secret_default, _put("Parameters/UnsubscribeSecret", {
        "Type": "String", "NoEcho": True, "Default": "change-me"}), "parameter UnsubscribeSecret"),
    "a secret in the environment": (secret_default, _put(
        "Resources/SendMessageFunction/Properties/Environment/Variables/UNSUBSCRIBE_SECRET",
        {"Ref": "ShopName"}), "UNSUBSCRIBE_SECRET is not"),
    "an example default": (required_parameters_with_defaults, _put(
        "Parameters/Sender/Default", "Shop <news@shop.example>"), "Sender: has a default"),
    "an empty value accepted": (required_parameters_with_defaults, _put(
        "Parameters/ShopUrl/AllowedPattern", ".*"), "ShopUrl: accepts an empty value"),
    "an alarm with no action": (alarm_without_action, _put(
        "Resources/EventsDeadLetterAlarm/Properties/AlarmActions", []), "EventsDeadLetterAlarm"),
    "a DLQ without an alarm": (unwatched, _put("Resources/Extra", {
        "Type": "AWS::SQS::Queue", "Properties": {"RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": ["ExtraDlq", "Arn"]}}}}),
        "ExtraDlq: a DLQ without an alarm"),
    "a function without alarms": (unwatched, _put("Resources/Extra", {
        "Type": FUNCTION, "Properties": {}}), "Extra: no Errors alarm"),
    "more than two readers on a stream": (stream_readers, _put("Resources/Pipe3", _pipe()),
                                          "Table's stream"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_put_back_is_named(template: Template, mistake: str) -> None:
    check, put_back, named = MISTAKES[mistake]
    broken = copy.deepcopy(template)
    for name in ("Pipe1", "Pipe2"):  # two readers of their own: the third one is the mistake
        broken["Resources"].setdefault(name, _pipe())
    if check is stream_readers:
        broken["Resources"] = {k: v for k, v in broken["Resources"].items()
                               if v["Type"] != "AWS::Pipes::Pipe" or k in ("Pipe1", "Pipe2")}
    put_back(broken)

    assert any(named in finding for finding in check(broken)), check(broken)


# ------------------------------------------------------------------ the local reading of it


def test_required_parameters_are_refused_when_missing_or_empty(template: Template) -> None:
    values = {"Sender": "Shop <news@shop.example>", "SenderIdentity": "shop.example",
              "ShopUrl": "https://shop.example", "UnsubscribeUrl": "https://shop.example/u"}

    with pytest.raises(BadSetting, match="Parameter Sender must have a value"):
        Resolver(template, "s", {k: v for k, v in values.items() if k != "Sender"})
    with pytest.raises(BadSetting, match="Parameter ShopUrl '' is required, an https:// URL"):
        Resolver(template, "s", {**values, "ShopUrl": ""})
    assert Resolver(template, "s", values).parameters["ShopUrl"] == "https://shop.example"


def test_conditions_if_and_no_value_resolve_as_cloudformation_does() -> None:
    t = {"Parameters": {"Mail": {"Type": "String", "Default": ""}},
         "Conditions": {"HasMail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Mail"}, ""]}]},
                        "Both": {"Fn::And": [{"Condition": "HasMail"}, {"Fn::Or": [True]}]}},
         "Resources": {"Sub": {"Type": "AWS::SNS::Subscription", "Condition": "Both"},
                       "Topic": {"Type": "AWS::SNS::Topic"}}}
    value = {"A": {"Fn::If": ["HasMail", {"Ref": "Mail"}, {"Ref": "AWS::NoValue"}]},
             "L": ["x", {"Fn::If": ["HasMail", "y", {"Ref": "AWS::NoValue"}]}]}

    off, on = Resolver(t, "s", {}), Resolver(t, "s", {"Mail": "ops@shop.example"})

    assert (off.resolve(value), set(off.resources)) == ({"L": ["x"]}, {"Topic"})
    assert on.resolve(value) == {"A": "ops@shop.example", "L": ["x", "y"]}
    assert set(on.resources) == {"Sub", "Topic"}


# ------------------------------------------------------------------ what AWS deploys


def test_the_template_as_samtranslator_expands_it_passes_cfn_lint(
        template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cfn-lint misses mistakes inside AWS::Serverless::* properties; the expanded template
    (what CloudFormation receives) shows them."""
    from samtranslator.translator.transform import transform

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # samtranslator needs a region
    sam = copy.deepcopy(template)
    for spec in sam["Resources"].values():  # what `sam package` does: code in S3
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(spec.get("Properties", {}).get(key), str):
                spec["Properties"][key] = "s3://artifacts/" + Path(spec["Properties"][key]).name

    class NoManagedPolicies:  # the template names no AWS managed policy
        def load(self) -> dict[str, str]:
            return {}

    expanded = transform(sam, {}, NoManagedPolicies())
    out = tmp_path / "expanded.json"
    out.write_text(json.dumps(expanded))

    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # the venv's own
    lint = subprocess.run([str(cfn_lint), str(out)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "AWS::Lambda::EventSourceMapping" in {r["Type"] for r in
                                                 expanded["Resources"].values()}
