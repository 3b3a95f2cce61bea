"""Typed GraphQL per kind (ADR-0020): the types a team's own package gets, read the way a
client reads them (introspection), and the names that cannot be given."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from conveyor.api.model_types import Shape, client_path
from conveyor.api.schema import create_schema
from conveyor.kinds import JobContext, Registry, job_kind
from tests.acme.jobs import REGISTRY

TYPE = """
query($name: String!) {
  __type(name: $name) {
    kind name description
    inputFields { name description defaultValue type { ...T } }
    fields { name description type { ...T } }
    enumValues { name description }
  }
}
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
"""

MUTATION = """
{ __schema { mutationType { fields {
    name description args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name } } }
"""


def _spell(t: dict[str, Any]) -> str:
    """An introspected type as SDL spells it: `[Foo!]!`."""
    if t["kind"] == "NON_NULL":
        return _spell(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return "[" + _spell(t["ofType"]) + "]"
    return str(t["name"])


async def _introspect(registry: Registry, name: str) -> dict[str, Any]:
    result = await create_schema(registry=registry).execute(TYPE, variable_values={"name": name})
    assert result.errors is None, result.errors
    assert result.data is not None
    found = result.data["__type"]
    assert found is not None, f"{name} is not in the schema"
    return found  # type: ignore[no-any-return]


async def test_a_kind_gets_an_input_type_from_its_model() -> None:
    found = await _introspect(REGISTRY, "ReportsGenerateInput")
    fields = {f["name"]: (_spell(f["type"]), f["defaultValue"]) for f in found["inputFields"]}
    assert fields == {
        "accountId": ("Int!", None),
        "months": ("Int!", "12"),
        "format": ("ReportsGenerateReportFormat!", "CSV"),
        "recipients": ("[ReportsGenerateRecipientInput!]", None),
        "since": ("DateTime", "null"),
        "mode": ("ReportsGenerateMode!", "fast"),
        "rowLimit": ("Long!", "1000"),
        "labels": ("JSON", None),
    }
    assert found["description"] == "Build the monthly report of one account."
    described = {f["name"]: f["description"] for f in found["inputFields"]}
    assert described["accountId"] == "The account to report on"


async def test_enums_and_nested_models_get_their_own_types() -> None:
    enum = await _introspect(REGISTRY, "ReportsGenerateReportFormat")
    assert enum["kind"] == "ENUM"
    assert [v["name"] for v in enum["enumValues"]] == ["CSV", "PDF"]
    assert enum["description"] == "How the report is written."
    literal = await _introspect(REGISTRY, "ReportsGenerateMode")
    assert [v["name"] for v in literal["enumValues"]] == ["fast", "thorough"]
    nested = await _introspect(REGISTRY, "ReportsGenerateRecipientInput")
    assert {f["name"]: _spell(f["type"]) for f in nested["inputFields"]} == {
        "email": "String!",
        "displayName": "String",
    }


async def test_a_handler_returning_a_model_gets_a_typed_result_on_job() -> None:
    result = await _introspect(REGISTRY, "ReportsGenerateResult")
    assert {f["name"]: _spell(f["type"]) for f in result["fields"]} == {
        "rows": "Int!",
        "format": "ReportsGenerateReportFormat!",
        "generatedAt": "DateTime!",
        "sections": "[ReportsGenerateSection!]!",
        "note": "String",
    }
    job = await _introspect(REGISTRY, "Job")
    fields = {f["name"]: _spell(f["type"]) for f in job["fields"]}
    assert fields["reportsGenerateResult"] == "ReportsGenerateResult"
    assert fields["result"] == "JSON", "the untyped result stays"
    assert "billingRefundResult" not in fields, "a dict result has no typed field"


async def test_each_kind_gets_a_typed_mutation_beside_the_generic_one() -> None:
    result = await create_schema(registry=REGISTRY).execute(MUTATION)
    assert result.data is not None
    fields = {f["name"]: f for f in result.data["__schema"]["mutationType"]["fields"]}
    typed = fields["submitReportsGenerate"]
    assert {a["name"]: _spell(a["type"]) for a in typed["args"]} == {
        "input": "ReportsGenerateInput!",
        "options": "SubmitOptions",
    }
    assert _spell(typed["type"]) == "SubmitJobResult!"
    assert "Build the monthly report" in typed["description"]
    # snake_case on the wire is camelCase in GraphQL, as everywhere else
    refund = await _introspect(REGISTRY, "BillingRefundInput")
    assert [f["name"] for f in refund["inputFields"]] == ["orderId", "amountCents"]
    assert {"submitJob", "submitJobs", "submitBillingRefund"} <= set(fields)


class _Empty(BaseModel):
    pass


class _Clash(BaseModel):
    a_b: int
    aB: int


async def _handler(ctx: JobContext, input: Any) -> None:
    return None


def test_a_kind_without_input_fields_takes_only_options() -> None:
    registry = Registry()
    job_kind("tests.empty", input=_Empty, into=registry)(_handler)
    text = create_schema(registry=registry).as_str()
    assert "submitTestsEmpty(options: SubmitOptions): SubmitJobResult!" in text
    assert "TestsEmptyInput" not in text, "GraphQL has no input type without fields"


def test_names_that_cannot_be_given_leave_the_kind_to_submit_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    # `submit.job` would define SubmitJobInput, which exists; `_Clash` has two fields that
    # are both `aB` in GraphQL; `a.b_c` and `a_b.c` are both `ABC`.
    job_kind("submit.job", input=_Empty, into=registry)(_handler)
    job_kind("tests.clash", input=_Clash, into=registry)(_handler)
    job_kind("tests.fine", input=_Empty, into=registry)(_handler)
    job_kind("a.b_c", input=_Empty, into=registry)(_handler)
    job_kind("a_b.c", input=_Empty, into=registry)(_handler)
    with caplog.at_level(logging.WARNING):
        text = create_schema(registry=registry).as_str()
    assert "submitTestsFine(" in text
    assert "submitTestsClash" not in text
    assert "submitABC(options" in text
    assert text.count("submitABC(") == 1
    skipped = {r.kind for r in caplog.records if hasattr(r, "kind")}  # type: ignore[attr-defined]
    assert skipped == {"tests.clash", "a_b.c"}, caplog.text
    assert "submitSubmitJob(options" in text, "an empty model has no input type to clash"


def test_a_model_error_location_becomes_the_path_the_client_wrote() -> None:
    recipients = Shape({"email": ("email", None), "display_name": ("displayName", None)})
    shape = Shape({"amount_cents": ("amountCents", None), "recipients": ("recipients", recipients)})
    assert client_path(shape, ["amount_cents"]) == ("amountCents",)
    assert client_path(shape, ["recipients", "0", "display_name"]) == (
        "recipients",
        "0",
        "displayName",
    )
    assert client_path(shape, ["unknown"]) == ("unknown",)
