"""Read infra/template.yaml (CloudFormation short tags included) and resolve intrinsics locally."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from dialogue.settings import BadSetting

ACCOUNT, REGION = "123456789012", "eu-west-1"
NO_VALUE = object()  # AWS::NoValue: the property (or list item) is left out, as CloudFormation does


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):  # the two intrinsics without an Fn:: prefix
        return {suffix: value}
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tag)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


class Resolver:
    """Physical names and attributes of the template's resources, as this local stack names them."""

    def __init__(self, template: dict[str, Any], stack: str, overrides: dict[str, str]):
        self.template, self.stack = template, stack
        self.parameters = _parameters(template.get("Parameters", {}), overrides)
        self.conditions: dict[str, bool] = {}
        # Resources whose Condition is false are not created, as CloudFormation does.
        self.resources: dict[str, Any] = {
            logical: spec for logical, spec in template.get("Resources", {}).items()
            if "Condition" not in spec or self.condition(spec["Condition"])}
        self.attributes: dict[tuple[str, str], str] = {}  # filled as resources are created

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def name(self, logical: str) -> str:
        kind = self.resources[logical]["Type"]
        props = self.resources[logical].get("Properties", {})
        base = f"{self.stack}-{logical}"
        if kind == "AWS::SQS::Queue":
            return base + (".fifo" if props.get("FifoQueue") else "")
        if kind == "AWS::S3::Bucket":
            return base.lower()
        if kind in ("AWS::Events::EventBus", "AWS::SES::ConfigurationSet") and "Name" in props:
            return str(self.resolve(props["Name"]))
        return base

    def ref(self, logical: str) -> str:
        if logical in self.parameters:
            return self.parameters[logical]
        if logical == "AWS::StackName":
            return self.stack
        if logical == "AWS::Region":
            return REGION
        if logical == "AWS::AccountId":
            return ACCOUNT
        if logical == "AWS::Partition":
            return "aws"
        kind = self.resources[logical]["Type"]
        if kind == "AWS::SecretsManager::Secret":  # its Ref is its ARN (with a random suffix)
            return self.attributes[(logical, "Arn")]
        if kind == "AWS::SQS::Queue":
            return self.attributes.get((logical, "QueueUrl"), self.name(logical))
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return self.get_att(logical, "Arn")
        return self.name(logical)

    def get_att(self, logical: str, attribute: str) -> str:
        if (logical, attribute) in self.attributes:
            return self.attributes[(logical, attribute)]
        kind, name = self.resources[logical]["Type"], self.name(logical)
        service = {"AWS::SQS::Queue": "sqs", "AWS::DynamoDB::Table": "dynamodb",
                   "AWS::S3::Bucket": "s3", "AWS::Events::EventBus": "events",
                   "AWS::Serverless::Function": "lambda", "AWS::Lambda::Function": "lambda",
                   "AWS::Serverless::StateMachine": "states",
                   "AWS::StepFunctions::StateMachine": "states"}.get(kind, "")
        if attribute in ("Name", "QueueName"):
            return name
        if attribute == "Arn":
            return {
                "sqs": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
                "dynamodb": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
                "s3": f"arn:aws:s3:::{name}",
                "events": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}",
                "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
                "states": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            }.get(service, f"arn:aws:local:{REGION}:{ACCOUNT}:{logical}")
        raise KeyError(f"{logical}.{attribute} is not known to the local runtime")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return NO_VALUE if value["Ref"] == "AWS::NoValue" else self.ref(value["Ref"])
        if len(value) == 1 and next(iter(value)) in _CONDITION_FUNCTIONS:
            return self._condition_function(value)
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            return self.get_att(logical, attribute)
        if set(value) == {"Fn::Sub"}:
            text, names = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) \
                else value["Fn::Sub"]
            names = {k: self.resolve(v) for k, v in names.items()}

            def sub(m: re.Match[str]) -> str:
                key = m.group(1)
                if key in names:
                    return str(names[key])
                if "." in key:
                    return self.get_att(*key.split(".", 1))
                return self.ref(key)

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if set(value) == {"Fn::Join"}:
            sep, parts = value["Fn::Join"]
            return sep.join(str(self.resolve(p)) for p in parts)
        if set(value) == {"Fn::Select"}:
            index, items = value["Fn::Select"]
            return self.resolve(items)[int(self.resolve(index))]
        if set(value) == {"Fn::Split"}:
            sep, text = value["Fn::Split"]
            return str(self.resolve(text)).split(sep)
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return self.resolve(if_true if self.condition(name) else if_false)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _condition_function(self, value: dict[str, Any]) -> bool:
        [(name, args)] = value.items()
        if name == "Condition":
            return self.condition(args)
        if name == "Fn::Equals":
            left, right = (self.resolve(a) for a in args)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(args[0])
        if name == "Fn::And":
            return all(self.resolve(a) for a in args)
        return any(self.resolve(a) for a in args)  # Fn::Or


_CONDITION_FUNCTIONS = ("Condition", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or")


def _parameters(specs: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """Parameter values as CloudFormation takes them: a parameter without a default must be
    given, and a value must match the parameter's AllowedPattern (its ConstraintDescription
    is the reason given)."""
    values: dict[str, str] = {}
    for name, spec in specs.items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise BadSetting(f"Parameter {name} must have a value: {spec.get('Description', '')}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            reason = spec.get("ConstraintDescription", f"must match {pattern}")
            raise BadSetting(f"Parameter {name} {value!r} {reason}")
        values[name] = value
    values.update({k: str(v) for k, v in overrides.items() if k not in values})
    return values


def as_json_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
