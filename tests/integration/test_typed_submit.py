"""Typed mutations per kind (ADR-0020) on real PostgreSQL and Redis: the same submit as
`submitJob` (validation, policy decision, audit, dispatch), errors named as the client wrote
them, and typed results read back from stored JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from conveyor.api.context import Context
from conveyor.api.schema import ConveyorSchema, create_schema
from conveyor.domain.models import Principal
from conveyor.services import auth
from conveyor.services.deps import open_deps
from conveyor.services.dispatch import stream_key
from conveyor.settings import Settings
from tests import support
from tests.acme.jobs import REGISTRY
from tests.integration.conftest import Api

RESULT = """
  __typename
  ... on Job { id status kind priority deduplicated }
  ... on UserError { code message }
  ... on InvalidInput { fieldErrors { path message } }
"""


async def test_a_typed_mutation_submits_as_submit_job_does(api: Api, env: support.Env) -> None:
    client = api.client(await api.key("alice"))
    query = f"""mutation($i: DemoSleepInput!, $o: SubmitOptions) {{
        submitDemoSleep(input: $i, options: $o) {{ {RESULT} }} }}"""
    variables = {"i": {"steps": 2}, "o": {"idempotencyKey": "typed-1", "priority": "HIGH"}}
    job = (await client(query, variables))["submitDemoSleep"]
    assert (job["__typename"], job["status"], job["kind"], job["priority"]) == (
        "Job",
        "QUEUED",
        "demo.sleep",
        "HIGH",
    )
    [row] = await env.sql("SELECT payload, priority FROM jobs WHERE id = $1::uuid", job["id"])
    assert orjson.loads(row["payload"]) == {"steps": 2, "stepSeconds": 0.5}
    decisions = await env.sql("SELECT decision, action, job_id::text AS job FROM policy_decisions")
    assert [(d["decision"], d["action"], d["job"]) for d in decisions] == [
        ("allow", "submit", job["id"])
    ]
    audit = await env.sql("SELECT action, target FROM audit_log WHERE action = 'job.submit'")
    assert [(a["action"], a["target"]) for a in audit] == [("job.submit", f"job:{job['id']}")]
    redis = Redis.from_url(support.REDIS_URL)
    try:
        assert await redis.xlen(stream_key(env.prefix, "default", 0)) == 1
    finally:
        await redis.aclose()
    again = (await client(query, variables))["submitDemoSleep"]
    assert (again["id"], again["deduplicated"]) == (job["id"], True)


async def test_typed_errors_name_the_fields_as_written(api: Api, env: support.Env) -> None:
    client = api.client(await api.key("alice"))
    query = f"""mutation {{ submitDemoSleep(input: {{steps: 0, stepSeconds: 99}},
        options: {{maxAttempts: 0}}) {{ {RESULT} }} }}"""
    result = (await client(query))["submitDemoSleep"]
    assert result["__typename"] == "InvalidInput"
    assert {tuple(e["path"]) for e in result["fieldErrors"]} == {
        ("input", "steps"),
        ("input", "stepSeconds"),
        ("options", "maxAttempts"),
    }
    # What the input type itself rules out is a GraphQL validation error, before anything runs.
    response = await client.raw('mutation { submitDemoSleep(input: {steps: "x"}) { __typename } }')
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 0


async def test_a_typed_result_reads_what_the_worker_stored(api: Api, stack: support.Stack) -> None:
    client = api.client(await api.key("alice"))
    stack.worker()
    query = f"mutation {{ submitDemoSleep(input: {{steps: 1, stepSeconds: 0}}) {{ {RESULT} }} }}"
    job = (await client(query))["submitDemoSleep"]
    await support.wait_for_status(client, job["id"], {"SUCCEEDED"})
    read = "query($id: ID!) { job(id: $id) { result demoSleepResult { steps } } }"
    found = (await client(read, {"id": job["id"]}))["job"]
    assert found == {"result": {"steps": 1}, "demoSleepResult": {"steps": 1}}


# A team's own package (tests.acme.jobs), through the schema built for it.


@pytest.fixture
async def acme(settings: Settings) -> AsyncIterator[tuple[ConveyorSchema, Context]]:
    async with open_deps(settings, REGISTRY, pool_size=2) as deps:
        key, _ = await auth.create_api_key(
            deps.engine, name="acme", secret_key=settings.secret_key.get_secret_value()
        )
        principal: Principal = key.principal()
        context = Context(deps=deps, hub=None, authenticator=None, _principal=principal)  # type: ignore[arg-type]
        yield create_schema(settings, REGISTRY), context


async def _run(
    acme: tuple[ConveyorSchema, Context], query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    schema, context = acme
    result = await schema.execute(query, variable_values=variables, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


REPORT = f"""mutation($i: ReportsGenerateInput!) {{
    submitReportsGenerate(input: $i) {{ {RESULT} }} }}"""


async def test_nested_enum_and_date_inputs_are_stored_as_the_model_reads_them(
    acme: tuple[ConveyorSchema, Context], env: support.Env
) -> None:
    variables = {
        "i": {
            "accountId": 7,
            "format": "PDF",
            "mode": "thorough",
            "since": "2026-11-01T00:00:00+00:00",
            "recipients": [{"email": "ops@example.com"}],
            "rowLimit": 2**40,
            "labels": {"team": "ops"},
        }
    }
    job = (await _run(acme, REPORT, variables))["submitReportsGenerate"]
    assert job["__typename"] == "Job", job
    [row] = await env.sql("SELECT payload FROM jobs WHERE id = $1::uuid", job["id"])
    assert orjson.loads(row["payload"]) == {
        "accountId": 7,
        "months": 12,
        "format": "pdf",
        "recipients": [{"email": "ops@example.com", "displayName": None}],
        "since": "2026-11-01T00:00:00Z",
        "mode": "thorough",
        "rowLimit": 2**40,
        "labels": {"team": "ops"},
    }
    refund = await _run(
        acme,
        f'mutation {{ submitBillingRefund(input: {{orderId: "o-1", amountCents: 250}}) '
        f"{{ {RESULT} }} }}",
    )
    [row] = await env.sql(
        "SELECT payload FROM jobs WHERE id = $1::uuid", refund["submitBillingRefund"]["id"]
    )
    assert orjson.loads(row["payload"]) == {"order_id": "o-1", "amount_cents": 250}


async def test_nested_errors_are_paths_into_the_input_as_written(
    acme: tuple[ConveyorSchema, Context], env: support.Env
) -> None:
    variables = {
        "i": {
            "accountId": 0,
            "recipients": [{"email": "ok@example.com"}, {"email": "x", "displayName": "a\x00b"}],
        }
    }
    refused = (await _run(acme, REPORT, variables))["submitReportsGenerate"]
    # The storable check (ADR-0017) runs first and names the NUL; fixed, the model speaks.
    assert refused["__typename"] == "InvalidInput"
    assert [e["path"] for e in refused["fieldErrors"]] == [
        ["input", "recipients", "1", "displayName"]
    ]
    variables["i"]["recipients"][1]["displayName"] = "ab"  # type: ignore[index]
    invalid = (await _run(acme, REPORT, variables))["submitReportsGenerate"]
    assert {tuple(e["path"]) for e in invalid["fieldErrors"]} == {
        ("input", "accountId"),
        ("input", "recipients", "1", "email"),
    }
    snake = await _run(
        acme,
        f'mutation {{ submitBillingRefund(input: {{orderId: "o", amountCents: 0}}) '
        f"{{ {RESULT} }} }}",
    )
    assert [e["path"] for e in snake["submitBillingRefund"]["fieldErrors"]] == [
        ["input", "amountCents"]
    ]
    naive = {"i": {"accountId": 1, "since": "2026-11-01T00:00:00"}}
    refused = (await _run(acme, REPORT, naive))["submitReportsGenerate"]
    assert [e["path"] for e in refused["fieldErrors"]] == [["input", "since"]]
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 0


async def test_typed_results_convert_enums_dates_and_lists(
    acme: tuple[ConveyorSchema, Context], env: support.Env
) -> None:
    job = (await _run(acme, REPORT, {"i": {"accountId": 3}}))["submitReportsGenerate"]
    stored = {
        "rows": 30,
        "format": "pdf",
        "generatedAt": "2026-12-01T00:00:00Z",
        "sections": [{"title": "summary", "rows": 3}],
        "note": None,
    }
    await env.sql(
        "UPDATE jobs SET status = 'SUCCEEDED', result = $2::jsonb WHERE id = $1::uuid",
        job["id"],
        orjson.dumps(stored).decode(),
    )
    read = """query($id: ID!) { job(id: $id) {
        reportsGenerateResult { rows format generatedAt sections { title rows } note } } }"""
    found = (await _run(acme, read, {"id": job["id"]}))["job"]["reportsGenerateResult"]
    assert found == {
        "rows": 30,
        "format": "PDF",
        "generatedAt": "2026-12-01T00:00:00+00:00",
        "sections": [{"title": "summary", "rows": 3}],
        "note": None,
    }
    # A result an older version of the kind stored, which the model no longer reads: null,
    # not an error; `result` keeps the JSON.
    await env.sql(
        'UPDATE jobs SET result = \'{"rows": "many"}\'::jsonb WHERE id = $1::uuid', job["id"]
    )
    read = "query($id: ID!) { job(id: $id) { result reportsGenerateResult { rows } } }"
    found = (await _run(acme, read, {"id": job["id"]}))["job"]
    assert found == {"result": {"rows": "many"}, "reportsGenerateResult": None}


async def test_a_typed_workflow_mutation_refuses_bad_input_as_written(
    api: Api, env: support.Env
) -> None:
    """The fuzzer's finding (`items: -1` was an internal error): a typed workflow mutation
    answers InvalidInput with the field as written and starts nothing; a good one starts the
    run as `submitWorkflow` does, and a reused key returns it."""
    client = api.client(await api.key("alice"))
    answer = """__typename ... on WorkflowRun { id workflow deduplicated }
        ... on InvalidInput { fieldErrors { path message } }"""
    bad = await client(
        f"""mutation {{ submitWorkflowDemoPipeline(input: {{items: -1}},
        options: {{idempotencyKey: ""}}) {{ {answer} }} }}"""
    )
    result = bad["submitWorkflowDemoPipeline"]
    assert result["__typename"] == "InvalidInput"
    assert {tuple(e["path"]) for e in result["fieldErrors"]} == {
        ("input", "items"),
        ("options", "idempotencyKey"),
    }
    # A key PostgreSQL cannot store (NUL) is refused as data, typed or not (ADR-0017).
    nul = {"k": "a\u0000b"}
    typed = await client(
        f"""mutation($k: String) {{ submitWorkflowDemoPipeline(input: {{items: 1}},
        options: {{idempotencyKey: $k}}) {{ {answer} }} }}""",
        nul,
    )
    untyped = await client(
        f"""mutation($k: String) {{ submitWorkflow(input: {{workflow: "demo.pipeline",
        input: {{items: 1}}, idempotencyKey: $k}}) {{ {answer} }} }}""",
        nul,
    )
    assert [e["path"] for e in typed["submitWorkflowDemoPipeline"]["fieldErrors"]] == [
        ["options", "idempotencyKey"]
    ]
    assert [e["path"] for e in untyped["submitWorkflow"]["fieldErrors"]] == [["idempotencyKey"]]
    assert (await env.sql("SELECT count(*) AS n FROM workflow_runs"))[0]["n"] == 0
    query = f"""mutation($i: DemoPipelineWorkflowInput!) {{
        submitWorkflowDemoPipeline(input: $i, options: {{idempotencyKey: "k"}}) {{ {answer} }} }}"""
    run = (await client(query, {"i": {"items": 2, "stepSeconds": 0}}))["submitWorkflowDemoPipeline"]
    assert (run["__typename"], run["workflow"], run["deduplicated"]) == (
        "WorkflowRun",
        "demo.pipeline",
        False,
    )
    again = (await client(query, {"i": {"items": 2, "stepSeconds": 0}}))[
        "submitWorkflowDemoPipeline"
    ]
    assert (again["id"], again["deduplicated"]) == (run["id"], True)
