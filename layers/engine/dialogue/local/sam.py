"""The template as AWS deploys it: infra/template.yaml expanded by samtranslator (the library
`sam deploy` and CloudFormation's AWS::Serverless transform use), so that the local stack is
built from the same AWS::Lambda::Function, AWS::Lambda::EventSourceMapping, AWS::IAM::Role,
AWS::Events::Rule and AWS::Scheduler::Schedule resources CloudFormation creates, never from a
second reading of the SAM shorthand.

Two changes before the transform, as `sam package` makes them: code folders become S3 URIs
(samtranslator accepts nothing else; `code_dir` reads the folder back from the key), and a
state machine's DefinitionUri file is inlined as its Definition (SAM's inline form of it).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from dialogue.local.template import REGION, load

CODE_BUCKET = "local-code"  # a placeholder: the key is the code folder's absolute path


class _NoManagedPolicies:
    """samtranslator's managed-policy map: the template names AWS managed policies by ARN only."""

    def load(self) -> dict[str, str]:
        return {}


def expand(template: Path | dict[str, Any], parameters: dict[str, str],
           template_dir: Path | None = None) -> dict[str, Any]:
    """The expanded template (plain CloudFormation), for these parameter values."""
    from samtranslator.translator.transform import transform

    if isinstance(template, Path):
        template_dir = template_dir or template.parent
        sam = load(template)
    else:
        sam = copy.deepcopy(template)
    base = template_dir or Path.cwd()
    for spec in sam.get("Resources", {}).values():
        props = spec.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{CODE_BUCKET}{(base / props[key]).resolve()}"
        uri = props.get("DefinitionUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props.pop("DefinitionUri")
            props["Definition"] = _definition(base / uri)
    region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # samtranslator needs a region to build ARNs
    try:
        expanded: dict[str, Any] = transform(sam, dict(parameters), _NoManagedPolicies())
    finally:
        if region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = region
    return expanded


def code_dir(function_props: dict[str, Any]) -> Path:
    """The folder of an expanded AWS::Lambda::Function's code (its S3 key, see `expand`)."""
    code = function_props["Code"]
    if code.get("S3Bucket") != CODE_BUCKET:
        raise ValueError(f"only local code folders run locally, not {code!r}")
    return Path("/") / code["S3Key"]  # the folder's absolute path (samtranslator drops the /)


def _definition(path: Path) -> Any:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):  # SAM takes an ASL file in YAML too
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)
