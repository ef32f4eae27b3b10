"""Segments: named groups of customers.

*Managed* segments change only through activities' add/remove actions, an import or by hand.
*Rule-based* segments hold whoever their `rule` — a tree of `all` / `any` / `not` over rules on
one field each (`model.segment_fields`) — holds for; the daily check refreshes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .base import Id, ShopId, Strict, ZoneName
from .matching import TimeFrame
from .segment_fields import (
    ATTRIBUTE,
    DESCRIPTIONS,
    FIELDS,
    MAX_LAST_DAYS,
    OPS,
    QUALIFIES,
    Op,
    Qualifier,
    field_type,
    parse_value,
    unknown_field,
    wrong_op,
)

RuleValue = bool | int | float | str | list[bool | int | float | str] | None


def _condition_schema(schema: dict[str, Any]) -> None:
    """Editors learn from the registry which fields exist, what each means, which operators fit
    it, which qualifiers apply and what shape the value takes for each operator."""
    attribute = {"type": "string", "pattern": ATTRIBUTE.pattern}
    schema["properties"]["field"] = {"title": "Field", "anyOf": [
        {**attribute, "description": "a custom profile field (attributes.<name>)"},
        *({"const": n, "description": f"{FIELDS[n]}: {DESCRIPTIONS[n]}"} for n in sorted(FIELDS))]}
    rules: list[dict[str, Any]] = []
    for kind, ops in OPS.items():
        names = sorted(n for n, t in FIELDS.items() if t == kind)
        field: dict[str, Any] = attribute if kind == "attribute" else {"enum": names}
        if kind != "attribute" and not names:
            continue
        rules.append({"if": {"properties": {"field": field}, "required": ["field"]},
                      "then": {"properties": {"op": {"enum": list(ops)}}}})
    for qualifier, fields in QUALIFIES.items():
        rules.append({"if": {"properties": {"field": {"not": {"enum": list(fields)}}}},
                      "then": {"not": {"required": [qualifier]}}})
    rules.append({"if": {"properties": {"field": {"enum": list(QUALIFIES["event"])}},
                         "required": ["field"]}, "then": {"required": ["event"]}})
    shapes: dict[str, dict[str, Any]] = {
        "in": {"type": "array", "minItems": 1},
        "between": {"type": "array", "minItems": 2, "maxItems": 2},
        "in_last_days": {"type": "integer", "minimum": 1, "maximum": MAX_LAST_DAYS},
    }
    for op, shape in shapes.items():
        rules.append({"if": {"properties": {"op": {"const": op}}, "required": ["op"]},
                      "then": {"properties": {"value": shape}, "required": ["value"]}})
    rules.append({"if": {"properties": {"op": {"const": "exists"}}, "required": ["op"]},
                  "then": {"not": {"required": ["value"]}},
                  "else": {"required": ["value"]}})
    schema["allOf"] = rules


class Condition(Strict):
    """A rule on one field: `{"field": "orders.count", "op": "greater", "value": 1}`, with
    qualifiers for the fields that count or date something (`time_frame`, `categories`…)."""

    model_config = ConfigDict(json_schema_extra=_condition_schema)

    field: str
    op: Op
    value: RuleValue = None
    time_frame: TimeFrame | None = None
    categories: list[str] = []
    products: list[ShopId] = []
    manufacturers: list[str] = []
    discounted: bool | None = None
    promotions: list[str] = []
    parameters: dict[str, str] = {}
    event: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("field")
    @classmethod
    def _known(cls, v: str) -> str:
        if field_type(v) is None:
            raise ValueError(unknown_field(v))
        return v

    @field_validator("op")
    @classmethod
    def _fits(cls, v: Op, info: ValidationInfo) -> Op:
        kind = field_type(info.data.get("field", ""))
        if kind is not None and v not in OPS[kind]:
            raise ValueError(wrong_op(info.data["field"], kind, v))
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: RuleValue, info: ValidationInfo) -> RuleValue:
        kind, op = field_type(info.data.get("field", "")), info.data.get("op")
        if kind is not None and op in OPS[kind]:
            parse_value(kind, op, v)
        return v

    @field_validator("time_frame", "categories", "products", "manufacturers", "discounted",
                     "promotions", "parameters", "event")
    @classmethod
    def _applies(cls, v: Any, info: ValidationInfo) -> Any:
        name = info.data.get("field")
        assert info.field_name is not None
        if name is not None and name not in QUALIFIES[info.field_name]:  # type: ignore[index]
            raise ValueError(f"{info.field_name!r} does not apply to the field {name!r}")
        if isinstance(v, TimeFrame) and v.kind == "since_activity_start":
            raise ValueError("a segment has no activity: 'since_activity_start' does not apply")
        return v

    @model_validator(mode="after")
    def _complete(self) -> Condition:
        if self.op != "exists" and self.value is None:
            raise ValueError(f"operator {self.op!r} needs a value")
        if self.field in QUALIFIES["event"] and self.event is None:
            raise ValueError(f"{self.field!r} needs 'event': the event's name or detail-type")
        return self

    def qualifiers(self) -> dict[Qualifier, Any]:
        """The qualifiers given, for a canonical key of what the rule reads."""
        return {q: getattr(self, q) for q in QUALIFIES if getattr(self, q) not in (None, [], {})}


class AllOf(Strict):
    """Holds when every condition holds."""

    all: list[Node] = Field(min_length=1)


class AnyOf(Strict):
    """Holds when at least one condition holds."""

    any: list[Node] = Field(min_length=1)


class Not(Strict):
    """Holds when the condition does not."""

    not_: Node = Field(alias="not")


NODE_TAGS = ("all-of", "any-of", "not-of", "field-rule")  # pydantic's names, not JSON keys


def _node_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return next((tag for key, tag in zip(("all", "any", "not", "field"), NODE_TAGS,
                                             strict=True) if key in v), None)
    tags: dict[type, str] = {AllOf: "all-of", AnyOf: "any-of", Not: "not-of",
                             Condition: "field-rule"}
    return tags.get(type(v))


Node = Annotated[
    Annotated[AllOf, Tag("all-of")] | Annotated[AnyOf, Tag("any-of")]
    | Annotated[Not, Tag("not-of")] | Annotated[Condition, Tag("field-rule")],
    Discriminator(_node_kind, custom_error_type="condition",
                  custom_error_message='a condition is {"all": [...]}, {"any": [...]}, '
                                       '{"not": {...}} or {"field": ..., "op": ..., "value": ...}'),
]


def _segment_schema(schema: dict[str, Any]) -> None:
    schema["allOf"] = [{
        "if": {"properties": {"kind": {"const": "rule"}}, "required": ["kind"]},
        "then": {"required": ["rule"], "properties": {"managed_by_activities": {"const": False}}},
        "else": {"properties": {"rule": False, "membership_days": False, "time_zone": False}},
    }]


class Segment(Strict):
    """A segment file. `kind` defaults to managed, so files written before rules stay valid."""

    model_config = ConfigDict(json_schema_extra=_segment_schema)

    schema_version: Literal[1] = 1
    id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    kind: Literal["managed", "rule"] = "managed"
    # Only segments marked so may be changed by add/remove actions (validation enforces it).
    # Defaults to true for managed segments, false (and only false) for rule-based ones.
    managed_by_activities: bool = True
    rule: Node | None = None
    # The zone of the rule's days: dates, "current" month, visits counted per day.
    time_zone: ZoneName = "UTC"
    # A member leaves after this many days even if the rule still holds, and joins again only
    # after leaving the rule and qualifying anew.
    membership_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="before")
    @classmethod
    def _rule_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "rule":
            return {"managed_by_activities": False, **data}
        return data

    @field_validator("managed_by_activities")
    @classmethod
    def _managed(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("kind") == "rule":
            raise ValueError("a rule-based segment cannot be changed by activities")
        return v

    @field_validator("rule", "membership_days")
    @classmethod
    def _only_rules(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and info.data.get("kind") == "managed":
            raise ValueError(f"only rule-based segments (kind 'rule') have {info.field_name!r}")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str, info: ValidationInfo) -> str:
        cls._only_rules(v, info)
        return v

    @model_validator(mode="after")
    def _has_rule(self) -> Segment:
        if self.kind == "rule" and self.rule is None:
            raise ValueError("a rule-based segment needs a 'rule'")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def references(self) -> list[tuple[str, str]]:
        """(JSON path, segment id) of every segment the rule tests membership of."""
        return [(at, seg) for path, cond in leaves(self.rule, "$.rule")
                if cond.field == "segments"
                for at, seg in _values(path, cond.value)]

    def conditions(self) -> list[Condition]:
        """Every rule on a field in the tree."""
        return [cond for _, cond in leaves(self.rule, "$.rule")]


def leaves(node: Node | None, path: str) -> Iterator[tuple[str, Condition]]:
    """Every leaf of a rule tree, with its JSON path."""
    match node:
        case AllOf():
            for i, child in enumerate(node.all):
                yield from leaves(child, f"{path}.all[{i}]")
        case AnyOf():
            for i, child in enumerate(node.any):
                yield from leaves(child, f"{path}.any[{i}]")
        case Not():
            yield from leaves(node.not_, f"{path}.not")
        case Condition():
            yield path, node


def _values(path: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, list):
        return [(f"{path}.value[{i}]", str(v)) for i, v in enumerate(value)]
    return [(f"{path}.value", str(value))]


for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()
