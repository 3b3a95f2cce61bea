"""The GraphQL API over HTTP, in-process, on real PostgreSQL and Redis (no worker running)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from conveyor.main import create_app
from conveyor.services.dispatch import stream_key
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api
from tests.support import JOB, submit


async def test_submit_stores_the_job_and_its_first_event_then_sends_it(
    api: Api, env: support.Env
) -> None:
    client = api.client(await api.key("alice"))
    job = await submit(client, "demo.sleep", {"steps": 2})
    assert job["__typename"] == "Job"
    assert (job["status"], job["queue"], job["attempt"], job["maxAttempts"]) == (
        "QUEUED",
        "default",
        0,
        3,
    )

    rows = await env.sql("SELECT status, payload FROM jobs WHERE id = $1::uuid", job["id"])
    assert rows[0]["status"] == "QUEUED"
    events = await env.sql("SELECT seq, type FROM job_events WHERE job_id = $1::uuid", job["id"])
    assert [(e["seq"], e["type"]) for e in events] == [(1, "SUBMITTED")]
    redis = Redis.from_url(support.REDIS_URL)
    try:
        assert await redis.xlen(stream_key(env.prefix, "default", 1)) == 1
    finally:
        await redis.aclose()
    # The stored payload is the validated one, defaults included.
    detail = (await client(JOB, {"id": job["id"]}))["job"]
    assert detail["status"] == "QUEUED"


async def test_invalid_payload_is_a_typed_error_and_stores_nothing(
    api: Api, env: support.Env
) -> None:
    client = api.client(await api.key("alice"))
    result = await submit(client, "demo.sleep", {"steps": 0, "stepSeconds": "soon", "extra": 1})
    assert result["__typename"] == "InvalidInput"
    assert result["code"] == "INVALID_INPUT"
    paths = {tuple(e["path"]) for e in result["fieldErrors"]}
    assert paths == {("payload", "steps"), ("payload", "stepSeconds"), ("payload", "extra")}
    not_object = await submit(client, "demo.sleep", [1, 2])  # type: ignore[arg-type]
    assert not_object["fieldErrors"] == [{"path": ["payload"], "message": "must be a JSON object"}]
    bad_options = await submit(client, "demo.sleep", {}, maxAttempts=0, timeoutSeconds=-1)
    assert {tuple(e["path"]) for e in bad_options["fieldErrors"]} == {
        ("maxAttempts",),
        ("timeoutSeconds",),
    }
    bad_backoff = await submit(
        client, "demo.sleep", {}, backoffBaseSeconds=-1, backoffCapSeconds=90_000
    )
    assert {tuple(e["path"]) for e in bad_backoff["fieldErrors"]} == {
        ("backoffBaseSeconds",),
        ("backoffCapSeconds",),
    }
    base_over_cap = await submit(
        client, "demo.sleep", {}, backoffBaseSeconds=10, backoffCapSeconds=5
    )
    assert base_over_cap["fieldErrors"] == [
        {"path": ["backoffBaseSeconds"], "message": "must not exceed backoffCapSeconds"}
    ]
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 0


async def test_backoff_is_set_per_job_else_per_kind(api: Api) -> None:
    client = api.client(await api.key("alice"))
    query = "query($id: ID!) { job(id: $id) { backoffBaseSeconds backoffCapSeconds } }"
    own = await submit(client, "demo.flaky", {}, backoffBaseSeconds=2.5, backoffCapSeconds=60)
    kinds = await submit(client, "demo.flaky", {})
    assert (await client(query, {"id": own["id"]}))["job"] == {
        "backoffBaseSeconds": 2.5,
        "backoffCapSeconds": 60.0,
    }
    # demo.flaky declares a 0.2 s base and a 2 s cap.
    assert (await client(query, {"id": kinds["id"]}))["job"]["backoffBaseSeconds"] == 0.2


async def test_unknown_kind_is_a_typed_error_and_stores_nothing(api: Api, env: support.Env) -> None:
    client = api.client(await api.key("alice"))
    result = await submit(client, "reports.generate", {})
    assert result == {
        "__typename": "UnknownJobKind",
        "message": "unknown job kind 'reports.generate'",
        "code": "UNKNOWN_JOB_KIND",
        "kind": "reports.generate",
    }
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 0


async def test_requests_without_a_valid_key_get_401(api: Api) -> None:
    good = await api.key("alice")
    for key in (None, "nope", "cvk_0000000000000000_forged", good[:-2] + "xx"):
        response = await api.client(key).raw("{ me { name } }")
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    raw = api.client(None).http
    response = await raw.post(
        "/graphql", json={"query": "{ me { name } }"}, headers={"Authorization": "Basic abc"}
    )
    assert response.status_code == 401


async def test_a_principal_sees_only_its_own_jobs_and_admins_see_all(api: Api) -> None:
    alice = api.client(await api.key("alice"))
    bob = api.client(await api.key("bob"))
    admin = api.client(await api.key("root", admin=True))
    job = await submit(alice, "demo.sleep", {})
    assert (await bob(JOB, {"id": job["id"]}))["job"] is None
    listing = "{ jobs { totalCount edges { node { id } } } }"
    assert (await bob(listing))["jobs"] == {"totalCount": 0, "edges": []}
    assert (await alice(listing))["jobs"]["totalCount"] == 1
    assert (await admin(JOB, {"id": job["id"]}))["job"]["id"] == job["id"]
    cancel = "mutation($id: ID!) { cancelJob(id: $id) { __typename ... on UserError { code } } }"
    assert (await bob(cancel, {"id": job["id"]}))["cancelJob"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
    }
    assert (await alice(JOB, {"id": job["id"]}))["job"]["status"] == "QUEUED"
    assert (await alice(JOB, {"id": "not-a-uuid"}))["job"] is None


async def test_keyset_pagination_newest_first_with_filters(api: Api) -> None:
    client = api.client(await api.key("alice"))
    ids = [(await submit(client, "demo.sleep", {"steps": i + 1}))["id"] for i in range(7)]
    flaky = (await submit(client, "demo.flaky", {"failTimes": 0}))["id"]
    page_q = """query($after: String, $filter: JobFilter) {
      jobs(first: 3, after: $after, filter: $filter) {
        totalCount edges { cursor node { id kind } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = (await client(page_q, {"after": after, "filter": {"kind": ["demo.sleep"]}}))["jobs"]
        assert page["totalCount"] == 7
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))
    everything = (await client(page_q, {"filter": None}))["jobs"]
    assert everything["edges"][0]["node"]["id"] == flaky
    by_status = (await client(page_q, {"filter": {"status": "SUCCEEDED"}}))["jobs"]
    assert by_status["totalCount"] == 0
    bad = await client.raw(page_q, {"after": "garbage!", "filter": None})
    assert bad.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    too_big = await client.raw("{ jobs(first: 100000) { totalCount } }")
    assert too_big.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    # A bounded count stops at `atMost` (at least that many); above the total it is exact.
    bounded = "{ jobs(first: 1) { few: totalCount(atMost: 5) all: totalCount(atMost: 50) } }"
    assert (await client(bounded))["jobs"] == {"few": 5, "all": 8}
    zero = await client.raw("{ jobs { totalCount(atMost: 0) } }")
    assert zero.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_idempotency_key_returns_the_same_job_or_a_conflict(
    api: Api, env: support.Env
) -> None:
    client = api.client(await api.key("alice"))
    first = await submit(client, "demo.sleep", {"steps": 3}, idempotencyKey="order-42")
    again = await submit(client, "demo.sleep", {"steps": 3}, idempotencyKey="order-42")
    assert again["id"] == first["id"]
    assert again["deduplicated"]
    assert not first["deduplicated"]
    other = await submit(client, "demo.sleep", {"steps": 4}, idempotencyKey="order-42")
    assert other["__typename"] == "Conflict"
    assert other["existingJobId"] == first["id"]
    # Keys are per principal.
    bob = api.client(await api.key("bob"))
    assert (await submit(bob, "demo.sleep", {"steps": 4}, idempotencyKey="order-42"))[
        "id"
    ] != first["id"]
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 2


async def test_cancel_a_queued_job_then_cancelling_again_is_a_typed_error(api: Api) -> None:
    client = api.client(await api.key("alice"))
    job = await submit(client, "demo.sleep", {})
    cancel = """mutation($id: ID!) { cancelJob(id: $id) {
        __typename ... on Job { status } ... on InvalidState { code status } } }"""
    assert (await client(cancel, {"id": job["id"]}))["cancelJob"] == {
        "__typename": "Job",
        "status": "CANCELLED",
    }
    again = (await client(cancel, {"id": job["id"]}))["cancelJob"]
    assert again == {"__typename": "InvalidState", "code": "INVALID_STATE", "status": "CANCELLED"}
    events = (await client(JOB, {"id": job["id"]}))["job"]["events"]
    assert [e["type"] for e in events] == ["SUBMITTED", "CANCELLED"]


async def test_job_kinds_publish_their_input_schema(api: Api) -> None:
    client = api.client(await api.key("alice"))
    kinds = (await client("{ jobKinds { name queue description inputSchema maxAttempts } }"))[
        "jobKinds"
    ]
    sleep = next(k for k in kinds if k["name"] == "demo.sleep")
    assert sleep["queue"] == "default"
    assert sleep["inputSchema"]["properties"]["steps"]["minimum"] == 1


async def test_queries_over_get_work_and_mutations_over_get_do_not(api: Api) -> None:
    client = api.client(await api.key("alice"))
    ok = await client.http.get("/graphql", params={"query": "{ me { name isAdmin } }"})
    assert ok.json()["data"]["me"] == {"name": "alice", "isAdmin": False}
    mutation = 'mutation { submitJob(input: {kind: "demo.sleep", payload: {}}) { __typename } }'
    refused = await client.http.get("/graphql", params={"query": mutation})
    assert refused.status_code in (400, 405)


async def test_graphql_syntax_errors_are_readable(api: Api) -> None:
    client = api.client(await api.key("alice"))
    body = (await client.raw("{ jobs { nope } }")).json()
    assert "nope" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_oversized_bodies_are_refused_with_413(api: Api) -> None:
    client = api.client(await api.key("alice"))
    big = await client.http.post(
        "/graphql",
        content=b"x" * (api.settings.max_body_bytes + 1),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413


async def test_health_readiness_and_metrics(api: Api) -> None:
    client = api.client(None)
    assert (await client.http.get("/healthz")).text == "ok"
    ready = await client.http.get("/readyz")
    assert ready.json() == {"postgresql": "ok", "redis": "ok"}
    alice = api.client(await api.key("alice"))
    await submit(alice, "demo.sleep", {})
    text = (await client.http.get("/metrics")).text
    assert 'conveyor_jobs{kind="demo.sleep",status="QUEUED"} 1.0' in text
    assert 'conveyor_queue_waiting_jobs{queue="default"} 1.0' in text
    assert "conveyor_open_subscriptions" in text


@asynccontextmanager
async def _app(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=changes))
    async with support.started(app) as running:
        transport = httpx.ASGITransport(app=running)
        async with httpx.AsyncClient(base_url="http://test", transport=transport) as http:
            yield http


async def test_metrics_want_the_metrics_token_when_one_is_set(api: Api) -> None:
    token = "metrics-" + "t" * 32
    async with _app(api.settings, metrics_token=SecretStr(token)) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        # An API key is no metrics token.
        key = await api.key("alice", admin=True)
        assert (
            await http.get("/metrics", headers={"authorization": f"Bearer {key}"})
        ).status_code == 401
        ok = await http.get("/metrics", headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert "conveyor_open_subscriptions" in ok.text


async def test_metrics_are_off_outside_dev_without_a_token(api: Api) -> None:
    async with _app(api.settings, env="production") as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200


async def test_scrapes_read_postgresql_at_most_once_per_cache_period(api: Api) -> None:
    alice = api.client(await api.key("alice"))
    async with _app(api.settings, metrics_cache_seconds=3600) as http:
        await submit(alice, "demo.sleep", {})
        first = (await http.get("/metrics")).text
        assert 'conveyor_jobs{kind="demo.sleep",status="QUEUED"} 1.0' in first
        await submit(alice, "demo.sleep", {})
        assert 'status="QUEUED"} 1.0' in (await http.get("/metrics")).text
    async with _app(api.settings, metrics_cache_seconds=0) as http:
        assert 'status="QUEUED"} 2.0' in (await http.get("/metrics")).text
        await submit(alice, "demo.sleep", {})
        assert 'status="QUEUED"} 3.0' in (await http.get("/metrics")).text


async def test_dev_mode_warns_once_when_reached_on_a_network_address(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    async def healthz(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, transport=api.transport) as http:
            assert (await http.get("/healthz")).status_code == 200

    await healthz("http://127.0.0.1:8000")
    assert "ENV=dev on a network address" not in caplog.text
    await healthz("http://192.0.2.10:8000")
    await healthz("http://192.0.2.10:8000")
    assert caplog.text.count("ENV=dev on a network address (192.0.2.10)") == 1


async def test_null_page_arguments_mean_their_defaults(api: Api) -> None:
    client = api.client(await api.key("alice"))
    job = await submit(client, "demo.sleep", {})
    page = await client(
        "query($after: String) { jobs(first: null, after: $after) "
        "{ edges { node { id events(after: null, first: null) { seq } } } } }",
        {"after": None},
    )
    assert [e["node"]["id"] for e in page["jobs"]["edges"]] == [job["id"]]
    assert [e["seq"] for e in page["jobs"]["edges"][0]["node"]["events"]] == [1]
    for field in ("auditLog", "policyDecisions"):
        admin = api.client(await api.key(f"admin-{field}", admin=True))
        assert (
            "edges" in (await admin(f"{{ {field}(first: null) {{ edges {{ cursor }} }} }}"))[field]
        )
