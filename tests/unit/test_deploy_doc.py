"""docs/deploy.md and its sample pipeline stay true to infra/template.yaml: every parameter of the
template has its row in the guide's parameter table (and no row names a parameter the template
lacks), and the sample GitHub Actions workflow and samconfig.toml parse, test before they deploy,
and give every required parameter."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dialogue.local.template import load

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
WORKFLOW = ROOT / "docs" / "pipeline" / "github-actions-deploy.yml"
SAMCONFIG = ROOT / "docs" / "pipeline" / "samconfig.toml"


@pytest.fixture(scope="module")
def parameters() -> dict[str, Any]:
    params: dict[str, Any] = load(ROOT / "infra" / "template.yaml")["Parameters"]
    return params


def required(parameters: dict[str, Any]) -> set[str]:
    return {name for name, spec in parameters.items() if "Default" not in spec}


def documented(text: str) -> list[str]:
    """The parameter names of the guide's parameter table: rows that start with a `Name` cell
    under the heading "## Parameters"."""
    section = text.split("\n## Parameters", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z0-9]+)` \|", section, flags=re.MULTILINE)


def test_the_guide_has_a_row_for_every_parameter_and_none_other(parameters: dict[str, Any]) -> None:
    rows = documented(GUIDE.read_text())
    assert sorted(set(parameters) - set(rows)) == [], "parameters without a row in docs/deploy.md"
    assert sorted(set(rows) - set(parameters)) == [], "rows for parameters the template lacks"
    assert len(rows) == len(set(rows)), "a parameter has two rows"


def test_the_guide_gives_each_default_as_the_template_does(parameters: dict[str, Any]) -> None:
    section = GUIDE.read_text().split("\n## Parameters", 1)[1].split("\n## ", 1)[0]
    for name, spec in parameters.items():
        row = re.search(rf"^\| `{name}` \| ([^|]*) \|", section, flags=re.MULTILINE)
        assert row, name
        cell = row.group(1).strip()
        if "Default" not in spec:
            assert cell.startswith("**required**"), (name, cell)
        else:
            default = str(spec["Default"])
            assert cell == (f"`{default}`" if default else "empty"), (name, cell)


def _steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True: either spelling is the trigger.
    assert workflow.get("on", workflow.get(True)), "the workflow has no trigger"
    assert workflow["permissions"]["id-token"] == "write", "OIDC needs id-token: write"
    (job,) = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _overrides(command: str) -> dict[str, str]:
    """Key=value pairs after --parameter-overrides in a shell command (backslash-newlines)."""
    words = shlex.split(command.replace("\\\n", " "))
    start = words.index("--parameter-overrides") + 1
    pairs = []
    for word in words[start:]:
        if word.startswith("--"):
            break
        pairs.append(word.split("=", 1))
    return {key: value for key, value in pairs}


def test_the_workflow_tests_then_builds_then_deploys_with_every_required_parameter(
        parameters: dict[str, Any]) -> None:
    steps = _steps()
    runs = [step.get("run", "") for step in steps]
    order = [next(i for i, run in enumerate(runs) if command in run)
             for command in ("make test", "sam build", "sam deploy")]
    assert order == sorted(order), "make test, sam build, sam deploy must run in this order"
    credentials = next(i for i, step in enumerate(steps)
                       if str(step.get("uses", "")).startswith(
                           "aws-actions/configure-aws-credentials@"))
    assert "role-to-assume" in steps[credentials]["with"], "OIDC: a role, not access keys"
    assert credentials < order[2]
    deploy = runs[order[2]]
    for flag in ("--no-confirm-changeset", "--no-fail-on-empty-changeset"):
        assert flag in deploy, flag
    overrides = _overrides(deploy)
    assert sorted(set(overrides) - set(parameters)) == [], "overrides the template lacks"
    assert sorted(required(parameters) - set(overrides)) == [], "required parameters not given"


def test_the_sample_samconfig_parses_and_gives_every_required_parameter(
        parameters: dict[str, Any]) -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    overrides = dict(word.split("=", 1) for word in shlex.split(deploy["parameter_overrides"]))
    assert sorted(set(overrides) - set(parameters)) == []
    assert sorted(required(parameters) - set(overrides)) == []


def test_the_guides_token_check_accepts_dialogues_links_and_refuses_forged_ones() -> None:
    """The shop's developer copies the guide's `valid` function: it must agree with the links
    send_message builds (delivery/plan.py), for a customer and a guest, and refuse a token made
    with another secret or for another subject."""
    from urllib.parse import parse_qs, urlsplit

    from dialogue.delivery.plan import DeliverySettings, _unsubscribe_url

    code = GUIDE.read_text().split("```python\nimport hashlib, hmac\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec("import hashlib, hmac\n" + code, namespace)  # noqa: S102 - the guide's own snippet
    valid = namespace["valid"]
    secret = "Q7dK2mZp9xLw4RtY8vBn3HcJ6sFg1AeUoP5iNqWz0TyXrMbVlCkDjEhGaSuOf2Lp"
    settings = DeliverySettings(sender="Shop <news@shop.example>", shop_name="Shop",
                                shop_url="https://shop.example",
                                unsubscribe_url="https://shop.example/unsubscribe?lang=fr",
                                unsubscribe_secret=secret.encode())
    for subject in ("customer:cust-frank", "guest:p-3f9a61c2"):
        query = parse_qs(urlsplit(_unsubscribe_url(subject, settings)).query)
        c, t = query["c"][0], query["t"][0]
        assert c == subject and len(t) == 32
        assert valid(c, t, secret)
        assert not valid(c, t, secret[:-1] + "x"), "a token of another secret"
        assert not valid(c + "x", t, secret), "a token of another subject"
