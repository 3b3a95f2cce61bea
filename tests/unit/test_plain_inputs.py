"""`inputs.install`: input objects of plain values built in one step are exactly what
strawberry's own field-by-field conversion builds, and only plain types get the shortcut."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

import pytest
import strawberry
from strawberry.scalars import JSON

from conveyor.api import inputs
from conveyor.api.schema import create_schema


@strawberry.enum
class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


@strawberry.input
class Plain:
    kind: str
    payload: JSON
    level: Level | None = None
    at: datetime | None = None
    count: int | None = None
    ratio: float = 0.5
    tags: list[str] | None = None
    levels: list[Level] = strawberry.field(default_factory=list)
    no_default: str | None = strawberry.field()


@strawberry.input
class Nested:
    inner: Plain
    name: str


@strawberry.input
class WithMaybe:
    value: strawberry.Maybe[str | None]


SEEN: list[Any] = []


@strawberry.type
class Query:
    @strawberry.field
    def plain(self, value: Plain, values: list[Plain] | None = None) -> str:
        SEEN.append((value, values))
        return "ok"

    @strawberry.field
    def nested(self, value: Nested) -> str:
        SEEN.append(value)
        return "ok"

    @strawberry.field
    def maybe(self, value: WithMaybe) -> str:
        SEEN.append(value)
        return "ok"


def _definition(cls: type) -> Any:
    return cls.__strawberry_definition__  # type: ignore[attr-defined]


CASES = [
    ('{ plain(value: {kind: "a", payload: {x: [1, 2]}}) }', None),
    (
        '{ plain(value: {kind: "a", payload: "null", level: HIGH, at: "2026-12-08T01:02:03+00:00", '
        'count: 3, ratio: 1.5, tags: ["x", "y"], levels: [LOW, HIGH], noDefault: "z"}) }',
        None,
    ),
    (
        "query($v: Plain!, $vs: [Plain!]) { plain(value: $v, values: $vs) }",
        {
            "v": {"kind": "b", "payload": "s", "tags": None, "noDefault": None},
            "vs": [{"kind": "c", "payload": 1, "level": "LOW"}, {"kind": "d", "payload": [None]}],
        },
    ),
]


@pytest.mark.parametrize(("query", "variables"), CASES)
def test_built_like_strawberry_builds(query: str, variables: dict[str, Any] | None) -> None:
    schema = strawberry.Schema(query=Query)
    definition = _definition(Plain)
    definition.from_input = None
    try:
        SEEN.clear()
        assert schema.execute_sync(query, variable_values=variables).errors is None
        want = list(SEEN)
        assert inputs.install(schema._schema) == 1  # Plain only: Nested and WithMaybe are not
        assert definition.from_input is not None
        SEEN.clear()
        assert schema.execute_sync(query, variable_values=variables).errors is None
        got = list(SEEN)
    finally:
        definition.from_input = None
    assert got == want
    assert [dataclasses.asdict(v) for v, _ in got] == [dataclasses.asdict(v) for v, _ in want]
    for (value, _), (expected, _) in zip(got, want, strict=True):
        assert type(value) is type(expected)


def test_nested_and_maybe_keep_strawberrys_conversion() -> None:
    schema = strawberry.Schema(query=Query)
    inputs.install(schema._schema)
    try:
        assert _definition(Nested).from_input is None
        assert _definition(WithMaybe).from_input is None
        SEEN.clear()
        result = schema.execute_sync(
            '{ nested(value: {name: "n", inner: {kind: "k", payload: 1}}) }'
        )
        assert result.errors is None
        assert isinstance(SEEN[0].inner, Plain)
    finally:
        _definition(Plain).from_input = None


def test_conveyors_submit_inputs_get_the_builder() -> None:
    schema = create_schema()
    graphql_schema = schema._schema
    for name in ("SubmitJobInput", "SubmitOptions"):
        definition = graphql_schema.type_map[name].extensions["strawberry-definition"]
        assert getattr(definition.from_input, "_conveyor_plain", False), name
