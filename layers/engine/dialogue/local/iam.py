"""Least privilege, checked locally: moto enforces no IAM, so the AWS calls each function makes
while the runtime runs are recorded (a botocore `before-parameter-build` handler) and compared
with the statements of its role in the expanded template (local/sam.py).

A call is the function's when made on the thread its handler runs on, or on a worker thread
(ThreadPoolExecutor) while that function alone runs. Calls the runtime makes itself (relays,
the tests' reads) and those of the state machines' service integrations belong to no function.

The evaluation follows IAM's for identity policies (an explicit Deny wins, else an Allow whose
Action and Resource, or NotResource, match): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
Condition keys are not evaluated except `s3:prefix` (ListBucket's Prefix).
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from dialogue.local.template import ACCOUNT, REGION, Resolver

_local = threading.local()
_active: list[str] = []
_lock = threading.Lock()

# What an AWS managed policy a SAM function role gets allows, for the functions' own calls
# (AWSLambdaBasicExecutionRole and AWSXrayWriteOnlyAccess cover logs and X-Ray, which the
# functions do not call locally). https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaSQSQueueExecutionRole.html
MANAGED = {"arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
    {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:GetQueueAttributes"], "Resource": "*"}]}

# Operations authorized as another action (IAM's service authorization reference).
_AS = {("sqs", "SendMessageBatch"): "SendMessage", ("sqs", "DeleteMessageBatch"): "DeleteMessage",
       ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
       ("s3", "HeadObject"): "GetObject", ("s3", "ListObjectsV2"): "ListBucket",
       ("s3", "ListObjects"): "ListBucket", ("s3", "ListObjectVersions"): "ListBucketVersions",
       ("lambda", "Invoke"): "InvokeFunction"}
# TransactWriteItems has no action of its own: each item is authorized as its own write.
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
             "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


@contextlib.contextmanager
def running(function: str) -> Iterator[None]:
    """While a function's handler runs: its AWS calls are its own."""
    before = getattr(_local, "function", None)
    _local.function = function
    with _lock:
        _active.append(function)
    try:
        yield
    finally:
        _local.function = before
        with _lock:
            _active.remove(function)


def current() -> str | None:
    function: str | None = getattr(_local, "function", None)
    if function is not None:
        return function
    if threading.current_thread().name.startswith("ThreadPoolExecutor"):
        with _lock:
            names = set(_active)
        return names.pop() if len(names) == 1 else None
    return None


@dataclass(frozen=True)
class Request:
    """One authorization an AWS call needs."""

    function: str
    action: str  # "dynamodb:PutItem"
    resource: str  # an ARN, or "" for a call on no resource (a text to a phone number)
    context: tuple[tuple[str, str], ...] = ()  # condition keys: (("s3:prefix", "segments/"),)


class CallRecorder:
    """Records every AWS call made through botocore by a function while it is installed."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._handler = ("before-parameter-build", self._record)

    def __enter__(self) -> CallRecorder:
        import boto3
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.append(self._handler)  # every session made from now on,
        boto3.DEFAULT_SESSION = None  # boto3.client()'s default one too
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.remove(self._handler)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = current()
        if function is not None:
            service = model.service_model.signing_name
            self.requests += [Request(function, a, r, c)
                              for a, r, c in authorizations(service, model.name, params)]


Authorization = tuple[str, str, tuple[tuple[str, str], ...]]


def authorizations(service: str, operation: str, params: dict[str, Any]) -> list[Authorization]:
    """(action, resource ARN, condition keys) that IAM checks for one call."""
    if service == "dynamodb" and operation in ("TransactWriteItems", "TransactGetItems"):
        return [(f"dynamodb:{_TRANSACT[kind]}", _table(body["TableName"]), ())
                for item in params["TransactItems"] for kind, body in item.items()]
    if service == "dynamodb" and operation in ("BatchWriteItem", "BatchGetItem"):
        return [(f"dynamodb:{operation}", _table(t), ()) for t in params["RequestItems"]]
    action = f"{service}:{_AS.get((service, operation), operation)}"
    if service == "events" and operation == "PutEvents":
        return [(action, _bus(e.get("EventBusName", "default")), ()) for e in params["Entries"]]
    if service == "ses" and operation in ("SendEmail", "SendRawEmail"):
        sender = params.get("FromEmailAddress") or params.get("Source", "")
        address = sender.rsplit("<", 1)[-1].strip("> ")
        out: list[Authorization] = [
            (action, _ses(f"identity/{address.rsplit('@', 1)[-1]}"), ())]
        if params.get("ConfigurationSetName"):
            out.append((action, _ses(f"configuration-set/{params['ConfigurationSetName']}"), ()))
        return out
    if service == "s3" and "Bucket" in params:
        if "Key" in params:
            if params.get("VersionId") and operation == "GetObject":
                action = "s3:GetObjectVersion"
            return [(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", ())]
        return [(action, f"arn:aws:s3:::{params['Bucket']}",
                 (("s3:prefix", params.get("Prefix", "")),))]
    return [(action, _resource(service, params), ())]


def _resource(service: str, params: dict[str, Any]) -> str:
    if service == "dynamodb" and "TableName" in params:
        index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
        return _table(params["TableName"]) + index
    if service == "sqs" and "QueueUrl" in params:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{urlparse(params['QueueUrl']).path.rsplit('/')[-1]}"
    if service == "sqs" and "QueueName" in params:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{params['QueueName']}"
    if service == "secretsmanager":
        return str(params.get("SecretId", "*"))
    if service == "states":
        return str(params.get("stateMachineArn") or params.get("executionArn") or "*")
    if service == "lambda" and "FunctionName" in params:
        name = params["FunctionName"]
        return name if name.startswith("arn:") else \
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    if service == "sns":  # a text to a phone number has no resource
        return str(params.get("TopicArn") or params.get("TargetArn") or "")
    return "*"


def _table(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _bus(name: str) -> str:
    return name if name.startswith("arn:") else \
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"


def _ses(path: str) -> str:
    return f"arn:aws:ses:{REGION}:{ACCOUNT}:{path}"


def statements(resolver: Resolver, function: str) -> list[dict[str, Any]]:
    """Every statement of the function's role in the expanded template, resolved."""
    role = resolver.resources[function]["Properties"]["Role"]
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise ValueError(f"{function}: its role is not one of the template's ({role!r})")
    props = resolver.resources[role["Fn::GetAtt"][0]]["Properties"]
    out = [s for p in props.get("Policies", [])
           for s in _listed(resolver.resolve(p["PolicyDocument"])["Statement"])]
    for arn in props.get("ManagedPolicyArns", []):
        out += MANAGED.get(str(resolver.resolve(arn)), [])
    return out


def allowed(statements_: list[dict[str, Any]], request: Request) -> bool:
    matching = [s for s in statements_ if _applies(s, request)]
    return any(s["Effect"] == "Allow" for s in matching) and \
        not any(s["Effect"] == "Deny" for s in matching)


def _applies(statement: dict[str, Any], request: Request) -> bool:
    if not any(_like(request.action.lower(), a.lower())
               for a in _listed(statement.get("Action", []))):
        return False
    if "NotResource" in statement:
        if any(_like(request.resource, r) for r in _listed(statement["NotResource"])):
            return False
    elif not any(_like(request.resource, r) for r in _listed(statement.get("Resource", []))):
        return False
    keys = dict(request.context)
    for operator, conditions in statement.get("Condition", {}).items():
        for key, values in conditions.items():
            if key in keys and operator in ("StringLike", "StringEquals") and not any(
                    _like(keys[key], v) if operator == "StringLike" else keys[key] == v
                    for v in _listed(values)):
                return False
    return True


def _like(value: str, pattern: str) -> bool:
    """IAM's wildcards: * any run of characters, ? one (actions are compared lower-cased)."""
    return pattern == "*" or fnmatch.fnmatchcase(value, pattern)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
