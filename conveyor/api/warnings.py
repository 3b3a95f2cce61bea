"""`extensions.warnings` of a GraphQL answer: things the caller should know although the
operation succeeded (e.g. a job submitted that no live worker will run now, ADR-0019).

Resolvers call `add(message)`; the `Warnings` schema extension collects what one operation's
resolvers added (a context variable set for the operation, so the operations of one WebSocket
connection, which share a context, keep theirs apart)."""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from strawberry.extensions import SchemaExtension

_CURRENT: ContextVar[list[str] | None] = ContextVar("conveyor_graphql_warnings", default=None)


def add(*messages: str) -> None:
    found = _CURRENT.get()
    if found is not None:
        found.extend(m for m in messages if m not in found)


class Warnings(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        self.found: list[str] = []
        token = _CURRENT.set(self.found)
        try:
            yield
        finally:
            _CURRENT.reset(token)

    def get_results(self) -> dict[str, Any]:
        found = getattr(self, "found", None)
        return {"warnings": list(found)} if found else {}
