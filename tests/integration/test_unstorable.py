"""Values PostgreSQL cannot store (ADR-0017), sent over HTTP to the in-process API on real
PostgreSQL: each is refused with INVALID_INPUT naming its path, and nothing is stored."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from conveyor.domain import errors
from conveyor.domain.models import Job, Principal
from conveyor.kinds.registry import Registry, job_kind, kind_of
from conveyor.services import auth, submit
from conveyor.services.deps import Deps, open_deps
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api
from tests.support import SUBMIT

NUL = "a\u0000b"
SURROGATE = "a\ud800b"


async def _post(api: Api, key: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    client = api.client(key)
    # json.dumps escapes NUL and lone surrogates (`\u0000`, `\ud800`) and writes NaN as `NaN`,
    # exactly as a JSON client sends them; the response must still be a 200 with an answer.
    body = json.dumps({"query": query, "variables": variables or {}})
    response = await client.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _refusal(body: dict[str, Any], field: str, path: list[str]) -> str:
    """The one error of `body`: INVALID_INPUT on `field`, naming `path`; its reason."""
    assert "Traceback" not in json.dumps(body)
    [error] = body["errors"]
    assert error["path"] == [field], error
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    [detail] = error["extensions"]["fieldErrors"]
    assert detail["path"] == path, detail
    return str(detail["message"])


async def _counts(env: support.Env) -> tuple[int, int, int]:
    rows = await env.sql(
        "SELECT (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM audit_log) AS audit,"
        " (SELECT count(*) FROM api_keys) AS keys"
    )
    return rows[0]["jobs"], rows[0]["audit"], rows[0]["keys"]


JOBS = "query($f: JobFilter) { jobs(filter: $f) { edges { cursor } } }"


@pytest.mark.parametrize(
    ("flt", "path"),
    [
        ({"kind": [NUL]}, ["filter", "kind", "0"]),
        ({"kind": ["demo.noop", SURROGATE]}, ["filter", "kind", "1"]),
        ({"queue": NUL}, ["filter", "queue"]),
    ],
)
async def test_job_filters_refuse_what_postgresql_cannot_compare(
    api: Api, flt: dict[str, Any], path: list[str]
) -> None:
    key = await api.key("admin", admin=True)
    reason = _refusal(await _post(api, key, JOBS, {"f": flt}), "jobs", path)
    assert "cannot be stored" in reason or "not valid Unicode" in reason


async def test_an_inline_literal_is_refused_like_a_variable(api: Api) -> None:
    key = await api.key("admin", admin=True)
    body = await _post(api, key, '{ jobs(filter: {kind: ["a\\u0000b"]}) { edges { cursor } } }')
    assert "NUL" in _refusal(body, "jobs", ["filter", "kind", "0"])


@pytest.mark.parametrize("mutation", ["cancelJobs", "retryJobs"])
async def test_bulk_operations_refuse_such_filters_and_change_nothing(
    api: Api, env: support.Env, mutation: str
) -> None:
    key = await api.key("admin", admin=True)
    await support.submit(api.client(key), "demo.noop", {})
    before = await _counts(env)
    query = f"mutation($f: JobFilter!) {{ {mutation}(filter: $f) {{ count }} }}"
    body = await _post(api, key, query, {"f": {"kind": ["demo.noop", NUL]}})
    _refusal(body, mutation, ["filter", "kind", "1"])
    assert await _counts(env) == before
    rows = await env.sql("SELECT status FROM jobs")
    assert [r["status"] for r in rows] == ["QUEUED"]


async def test_audit_log_filter_refuses_a_nul(api: Api) -> None:
    key = await api.key("admin", admin=True)
    query = "query($f: AuditLogFilter) { auditLog(filter: $f) { edges { cursor } } }"
    _refusal(
        await _post(api, key, query, {"f": {"target": "a\u0000"}}), "auditLog", ["filter", "target"]
    )


async def test_create_api_key_answers_invalid_input_as_data(api: Api, env: support.Env) -> None:
    key = await api.key("admin", admin=True)
    before = await _counts(env)
    query = """mutation($n: String!) { createApiKey(name: $n, role: VIEWER) {
      __typename ... on InvalidInput { code fieldErrors { path message } } } }"""
    body = await _post(api, key, query, {"n": NUL})
    assert "errors" not in body, body
    result = body["data"]["createApiKey"]
    assert result["__typename"] == "InvalidInput"
    assert result["fieldErrors"][0]["path"] == ["name"]
    assert await _counts(env) == before


async def test_set_policy_refuses_a_kind_glob_with_a_nul(api: Api, env: support.Env) -> None:
    key = await api.key("admin", admin=True)
    query = """mutation($k: [String!]!) {
      setPolicy(input: {roleKinds: [{role: SUBMITTER, kinds: $k}]}) {
      __typename ... on InvalidInput { fieldErrors { path } } } }"""
    body = await _post(api, key, query, {"k": ["demo.*", NUL]})
    result = body["data"]["setPolicy"]
    assert result == {
        "__typename": "InvalidInput",
        "fieldErrors": [{"path": ["input", "roleKinds", "0", "kinds", "1"]}],
    }
    assert await env.sql("SELECT 1 FROM policies") == []


@pytest.mark.parametrize(
    ("options", "path", "reason"),
    [
        ({"idempotencyKey": "k\u0000"}, ["idempotencyKey"], "NUL"),
        ({"idempotencyKey": "k\udfff"}, ["idempotencyKey"], "surrogate"),
        ({"kind": "demo.noop\u0000"}, ["kind"], "NUL"),
        ({"runAt": "0001-01-01T00:00:00+01:00"}, ["runAt"], "range"),
        ({"runAt": "9999-12-31T23:59:59-01:00"}, ["runAt"], "range"),
        ({"runAt": "2030-01-01T00:00:00"}, ["runAt"], "timezone"),
    ],
)
async def test_submit_refuses_unstorable_options_as_data(
    api: Api, env: support.Env, options: dict[str, Any], path: list[str], reason: str
) -> None:
    key = await api.key("alice")
    before = await _counts(env)
    body = await _post(api, key, SUBMIT, {"input": {"kind": "demo.noop", "payload": {}, **options}})
    assert "errors" not in body, body
    result = body["data"]["submitJob"]
    assert result["__typename"] == "InvalidInput", result
    [detail] = result["fieldErrors"]
    assert detail["path"] == path
    assert reason in detail["message"]
    assert await _counts(env) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"steps": 1, "x": {"deep": [1, "a\u0000"]}},
        {"steps": 1, "k\u0000": 1},
        {"\ud800": 1},
        {"stepSeconds": float("nan")},
        {"stepSeconds": float("inf")},
        {"steps": 2**70},
    ],
)
async def test_submit_refuses_unstorable_payloads_as_data(
    api: Api, env: support.Env, payload: dict[str, Any]
) -> None:
    # demo.sleep's model refuses these itself (unknown keys, bounds); a kind that takes any
    # text or JSON is tested at the service below.
    key = await api.key("alice")
    before = await _counts(env)
    variables = {"input": {"kind": "demo.sleep", "payload": payload}}
    body = await _post(api, key, SUBMIT, variables)
    result = body["data"]["submitJob"]
    assert result["__typename"] == "InvalidInput", result
    assert all(e["path"][0] == "payload" for e in result["fieldErrors"]), result
    assert await _counts(env) == before


async def test_one_bad_item_of_a_batch_is_refused_alone(api: Api, env: support.Env) -> None:
    key = await api.key("alice")
    query = """mutation($i: [SubmitJobInput!]!) { submitJobs(inputs: $i) {
      __typename ... on InvalidInput { fieldErrors { path } } } }"""
    inputs = [
        {"kind": "demo.noop", "payload": {}},
        {"kind": "demo.noop", "payload": {}, "idempotencyKey": NUL},
    ]
    body = await _post(api, key, query, {"i": inputs})
    assert body["data"]["submitJobs"] == [
        {"__typename": "Job"},
        {"__typename": "InvalidInput", "fieldErrors": [{"path": ["idempotencyKey"]}]},
    ]
    assert (await _counts(env))[0] == 1


async def test_a_refusal_is_logged_once_at_info_without_a_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api.key("admin", admin=True)
    with caplog.at_level(logging.DEBUG):
        await _post(api, key, JOBS, {"f": {"queue": NUL}})
        await _post(api, key, "{ jobs { nope } }")  # a validation error
    refusals = [r for r in caplog.records if r.name == "conveyor.api.errors"]
    assert [(r.levelno, r.code) for r in refusals] == [  # type: ignore[attr-defined]
        (logging.INFO, "INVALID_INPUT"),
        (logging.INFO, "GRAPHQL_VALIDATION_FAILED"),
    ]
    assert all(r.exc_info is None and r.request_id for r in refusals)  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    ]


# The Python producer API: the submit service applies the same rule to what it would store.


class _AnyInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str = ""
    ratio: float = 0.0
    count: int = 0
    data: Any = None


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[tuple[Deps, Principal]]:
    registry = Registry([kind_of(job_kind("tests.any", input=_AnyInput)(_noop))])
    async with open_deps(settings, registry, pool_size=2) as deps:
        key, _ = await auth.create_api_key(
            deps.engine, name="producer", secret_key=settings.secret_key.get_secret_value()
        )
        yield deps, key.principal()


async def _submit(deps: Deps, principal: Principal, req: submit.SubmitRequest) -> Job:
    [result] = await submit.submit_many(deps, principal, [req])
    if isinstance(result, errors.UserError):
        raise result
    return result


async def _noop(ctx: Any, input: _AnyInput) -> None:
    return None


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        ({"text": NUL}, ("payload", "text"), "NUL"),
        ({"text": SURROGATE}, ("payload", "text"), "surrogate"),
        ({"data": {"x": [1, {"k\u0000": 1}]}}, ("payload", "data", "x", "1", "k\\u0000"), "key"),
        # pydantic would crash on this key: the payload is checked before the kind's model.
        ({"data": {"\ud800": 1}}, ("payload", "data", "\\ud800"), "surrogate"),
        # pydantic's JSON mode would store this NaN as null.
        ({"data": [0.5, float("nan")]}, ("payload", "data", "1"), "finite"),
        ({"data": -(2**63) - 1}, ("payload", "data"), "64-bit"),
        ({"data": _nested(150)}, ("payload", "data", *["0"] * 99), "nested deeper"),
        # Dropped by nothing: a key the model does not declare is checked all the same.
        ({"extra": "x\u0000"}, ("payload", "extra"), "NUL"),
        # The kind's model turns digits into an int JSON cannot hold.
        ({"count": "9" * 30}, ("payload",), "cannot be stored"),
    ],
)
async def test_the_submit_service_refuses_what_it_could_not_store(
    producer: tuple[Deps, Principal],
    env: support.Env,
    payload: dict[str, Any],
    path: tuple[str, ...],
    reason: str,
) -> None:
    deps, principal = producer
    [result] = await submit.submit_many(
        deps, principal, [submit.SubmitRequest(kind="tests.any", payload=payload)]
    )
    assert isinstance(result, errors.InvalidInput), result
    [found] = result.field_errors
    assert (found.path, reason in found.message) == (path, True), found
    assert await env.sql("SELECT 1 FROM jobs") == []


async def test_the_submit_service_refuses_an_out_of_range_run_at_and_stores_real_text(
    producer: tuple[Deps, Principal], env: support.Env
) -> None:
    deps, principal = producer
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(errors.InvalidInput) as refused:
        await _submit(deps, principal, submit.SubmitRequest("tests.any", {}, run_at=early))
    assert refused.value.field_errors[0].path == ("runAt",)
    # Text that is merely unusual is stored as sent.
    text = "héllo ✓ \U0001f600 \u200b\t\n\x7f"
    job = await _submit(
        deps, principal, submit.SubmitRequest("tests.any", {"text": text, "data": {"ü": 1}})
    )
    rows = await env.sql("SELECT payload FROM jobs WHERE id = $1", job.id)
    assert json.loads(rows[0]["payload"])["text"] == text
