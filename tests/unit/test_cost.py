"""The query cost model (conveyor/api/cost.py), run as the schema's validation rule."""

from __future__ import annotations

import re

import pytest
from graphql import GraphQLError, parse, validate

from conveyor import kinds
from conveyor.api import cost
from conveyor.api.schema import FIELD_COSTS, PAGE_LIMITS, create_schema
from conveyor.settings import Settings
from tests.support import ROOT

LIMIT = Settings.model_construct().graphql_max_cost
schema = create_schema(registry=kinds.load(kinds.DEMO_MODULES))


def _refusals(query: str, max_cost: int = LIMIT) -> list[GraphQLError]:
    rule = cost.create_validator(max_cost, page_limits=PAGE_LIMITS, field_costs=FIELD_COSTS)
    found = validate(schema._schema, parse(query), [rule])
    return [e for e in found if (e.extensions or {}).get("code") == "QUERY_TOO_COMPLEX"]


def _cost(query: str) -> int:
    (refused,) = _refusals(query, max_cost=0)
    assert refused.extensions is not None
    return int(refused.extensions["cost"])  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ me { name } }", 2),
        # The connection's `first` (default 50) multiplies its edges: jobs, edges, 50 x (node, id).
        ("{ jobs { edges { node { id } } } }", 1 + 1 + 50 * 2),
        ("{ jobs(first: 3) { pageInfo { hasNextPage } edges { cursor } } }", 1 + 2 + 1 + 3),
        # A variable `first` counts the field's maximum (500); beyond it, the maximum too.
        ("query($n: Int!) { jobs(first: $n) { edges { cursor } } }", 1 + 1 + 500),
        ("{ jobs(first: 100000) { edges { cursor } } }", 1 + 1 + 500),
        # Job.events: 1 + 100 (a query per job) + 100 events (its default page) x 1.
        ('{ job(id: "x") { events { seq } } }', 1 + 101 + 100),
        # Lists without `first` count 10 items; fragments count like inline fields.
        ("{ workers { id queues } }", 1 + 10 * 2),
        ("{ workers { ...W } } fragment W on Worker { id }", 1 + 10),
    ],
)
def test_cost_counts_fields_times_page_sizes(query: str, cost: int) -> None:
    assert _cost(query) == cost


def test_nested_lists_are_refused_with_a_clear_error() -> None:
    one = "jobs(first: 500) { edges { node { events(first: 1000) { job { events { seq } } } } } }"
    refused = _refusals("{ " + " ".join(f"a{i}: {one}" for i in range(30)) + " }")
    assert len(refused) == 1
    assert "may return up to 3,031,530,060 fields; the limit is 50,000" in str(refused[0].message)


def test_the_dashboards_operations_stay_well_under_the_limit() -> None:
    source = (ROOT / "frontend" / "src" / "lib" / "operations.ts").read_text()
    documents = re.findall(r"graphql\(`(.*?)`\)", source, re.S)
    fragments = "\n".join(d for d in documents if d.strip().startswith("fragment"))
    operations = [d for d in documents if not d.strip().startswith("fragment")]
    assert len(operations) > 10
    for document in operations:
        used = "\n".join(
            f
            for f in re.split(r"(?=\bfragment\b)", fragments)
            if (m := re.match(r"\s*fragment (\w+)", f)) and f"...{m.group(1)}" in document
        )
        assert _cost(document + used) < LIMIT // 5, document
