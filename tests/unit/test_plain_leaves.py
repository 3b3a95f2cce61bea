"""`PlainLeaves` answers exactly what strawberry's own executor answers: data, errors and their
paths, for plain objects and for every case where the shortcut must step aside."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from conveyor.api import execution
from conveyor.api.execution import PlainLeaves


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    nickname: str | None
    colour: Colour
    weight: float
    created_at: datetime
    ref: uuid.UUID

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def tagged(self, prefix: str = "#") -> str:
        return prefix + self.name


def _item(**overrides: Any) -> Item:
    values: dict[str, Any] = {
        "id": strawberry.ID("1"),
        "name": "one",
        "nickname": None,
        "colour": Colour.RED,
        "weight": 1.5,
        "created_at": datetime(2026, 12, 8, tzinfo=UTC),
        "ref": uuid.UUID(int=7),
    }
    values.update(overrides)
    return Item(**values)


ITEMS: list[Item] = []


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS

    @strawberry.field
    async def later(self) -> list[Item]:
        return ITEMS


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    fast = strawberry.Schema(query=Query, execution_context_class=PlainLeaves)
    plain = strawberry.Schema(
        query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext
    )
    return fast, plain


ALL = "id name nickname colour weight createdAt ref __typename"
DOCUMENTS = [
    f"{{ items {{ {ALL} }} }}",
    f"{{ later {{ {ALL} }} }}",
    "{ items { a: name b: name id } }",
    "{ items { name shout } }",
    '{ items { tagged(prefix: "!") name } }',
    "{ items { ... on Item { name colour } id } }",
    "query($yes: Boolean!) { items { name @include(if: $yes) id } }",
]

CASES = {
    "plain": [_item(), _item(id=strawberry.ID("2"), nickname="two", colour=Colour.BLUE)],
    # A null in a non-null field: the error, its path and the nulled list must be the same.
    "null in non-null": [_item(), _item(name=None)],
    # A value the enum cannot represent.
    "bad enum": [_item(colour="green")],
    # A value the Float scalar refuses.
    "bad float": [_item(weight="heavy")],
    # An exception object as a value.
    "exception": [_item(nickname=ValueError("boom"))],
    "empty": [],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("document", DOCUMENTS)
async def test_same_answer_as_strawberry(case: str, document: str) -> None:
    ITEMS[:] = CASES[case]
    fast, plain = _schemas()
    variables = {"yes": True}
    got = await fast.execute(document, variable_values=variables)
    want = await plain.execute(document, variable_values=variables)
    assert got.data == want.data
    assert [(e.message, e.path) for e in got.errors or []] == [
        (e.message, e.path) for e in want.errors or []
    ]


async def test_the_shortcut_is_taken_for_plain_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a check that cannot fail: a plan that never applies would pass the comparison
    above, so count the objects completed by the shortcut."""
    ITEMS[:] = [_item(), _item(id=strawberry.ID("2"))]
    completed: list[Any] = []
    original = execution._complete

    def counting(*args: Any) -> dict[str, Any]:
        result = original(*args)
        completed.append(result)
        return result

    monkeypatch.setattr(execution, "_complete", counting)
    fast, _ = _schemas()
    result = await fast.execute("{ items { id name colour } }")
    assert result.errors is None
    assert len(completed) == 2
    assert completed[0] == {"id": "1", "name": "one", "colour": "RED"}

    completed.clear()
    await fast.execute("{ items { id shout } }")  # a field with its own resolver: no plan
    assert completed == []
