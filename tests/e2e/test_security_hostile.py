"""Hostile requests against a real `conveyor serve`: each is answered with a clear 4xx or
GraphQL error within a second, while the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from conveyor.settings import Settings
from tests import support

GRJ = "application/graphql-response+json"


def _deep(depth: int) -> str:
    inner = "seq"
    for _ in range(depth):
        inner = f"events {{ job {{ {inner} }} }}"
    return f'{{ job(id: "00000000-0000-0000-0000-000000000000") {{ {inner} }} }}'


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


def _nested_lists(aliases: int) -> str:
    # Within the depth, alias and token limits; only the cost model refuses it.
    one = "jobs(first: 500) { edges { node { events(first: 1000) { job { events { seq } } } } } }"
    return "{ " + " ".join(f"a{i}: {one}" for i in range(aliases)) + " }"


async def _hostile(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
    js = {"content-type": "application/json", "accept": GRJ}
    mutation = 'mutation { submitJob(input: {kind: "demo.noop", payload: {}}) { __typename } }'
    cases: dict[str, Any] = {
        "deep query": http.post("/graphql", json={"query": _deep(40)}, headers=js),
        "2,000 aliases": http.post("/graphql", json={"query": _aliases(2000)}, headers=js),
        "300 aliases": http.post("/graphql", json={"query": _aliases(300)}, headers=js),
        "nested lists": http.post("/graphql", json={"query": _nested_lists(30)}, headers=js),
        "deeply nested JSON": http.post(
            "/graphql",
            content=b'{"query": "{ me { name } }", "variables": {"x": '
            + b"[" * 200_000
            + b"]" * 200_000
            + b"}}",
            headers=js,
        ),
        "deeply nested variables over GET": http.get(
            "/graphql",
            params={"query": "{ me { name } }", "variables": "[" * 2_000 + "]" * 2_000},
            headers=js,
        ),
        "5 MB body": http.post(
            "/graphql",
            content=json.dumps({"query": "{ me { name } }", "pad": "x" * 5_000_000}),
            headers=js,
        ),
        "1,000-operation batch": http.post(
            "/graphql", json=[{"query": "{ me { name } }"}] * 1000, headers=js
        ),
        "mutation over GET": http.get("/graphql", params={"query": mutation}, headers=js),
        "text/plain POST": http.post(
            "/graphql",
            content=json.dumps({"query": mutation}),
            headers={"content-type": "text/plain", "accept": GRJ},
        ),
        "form POST": http.post("/graphql", data={"query": mutation}, headers={"accept": GRJ}),
        "multipart POST": http.post(
            "/graphql", files={"operations": ("o.json", json.dumps({"query": mutation}))}
        ),
        "malformed JSON": http.post("/graphql", content=b'{"query": "{ me', headers=js),
        "wrong variable types": http.post(
            "/graphql",
            json={
                "query": "query($first: Int!) { jobs(first: $first) { totalCount } }",
                "variables": {"first": "many"},
            },
            headers=js,
        ),
        "unknown operation": http.post(
            "/graphql",
            json={"query": "query A { me { name } }", "operationName": "B"},
            headers=js,
        ),
        "not acceptable": http.post(
            "/graphql", json={"query": "{ me { name } }"}, headers={"accept": "text/html"}
        ),
        "PUT": http.put("/graphql", json={"query": "{ me { name } }"}, headers=js),
    }
    names = list(cases)
    started = time.monotonic()
    answers = await asyncio.gather(*(_timed(cases[n]) for n in names))
    assert time.monotonic() - started < 10
    return dict(zip(names, answers, strict=True))


async def _timed(request: Any) -> httpx.Response:
    started = time.monotonic()
    response: httpx.Response = await request
    response.extensions["elapsed_s"] = time.monotonic() - started
    return response


EXPECTED = {
    "deep query": (400, "GRAPHQL_VALIDATION_FAILED", "exceeds maximum operation depth"),
    "2,000 aliases": (400, "GRAPHQL_VALIDATION_FAILED", "more than 2000 tokens"),
    "300 aliases": (400, "GRAPHQL_VALIDATION_FAILED", "300 aliases found. Allowed: 30"),
    "nested lists": (400, "QUERY_TOO_COMPLEX", "may return up to"),
    "deeply nested JSON": (400, "BAD_REQUEST", "nested too deeply"),
    "deeply nested variables over GET": (400, "BAD_REQUEST", "nested too deeply"),
    "5 MB body": (413, "PAYLOAD_TOO_LARGE", "request body over"),
    "1,000-operation batch": (400, "BATCH_TOO_LARGE", "at most 10 operations"),
    "mutation over GET": (405, "METHOD_NOT_ALLOWED", "only queries"),
    "text/plain POST": (415, "UNSUPPORTED_MEDIA_TYPE", "text/plain"),
    "form POST": (415, "UNSUPPORTED_MEDIA_TYPE", "application/x-www-form-urlencoded"),
    "multipart POST": (415, "UNSUPPORTED_MEDIA_TYPE", "multipart/form-data"),
    "malformed JSON": (400, "BAD_REQUEST", "not valid JSON"),
    "wrong variable types": (400, "GRAPHQL_VALIDATION_FAILED", "Int cannot represent"),
    "unknown operation": (400, "BAD_REQUEST", "B"),
    "not acceptable": (406, "NOT_ACCEPTABLE", "text/html"),
    "PUT": (405, None, None),
}


async def test_hostile_requests_get_clear_errors_fast_and_others_are_served(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(GRAPHQL_MAX_ALIASES="30", GRAPHQL_MAX_TOKENS="2000")
    key = env.create_key("mallory")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        bystander = asyncio.create_task(_keep_asking(base, env.create_key("bystander")))
        await asyncio.sleep(0.2)
        answers = await _hostile(http)
        served = await bystander
    for name, (status, code, text) in EXPECTED.items():
        response = answers[name]
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.extensions["elapsed_s"] < 1.0, (name, response.extensions["elapsed_s"])
        if code is not None:
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == code, (name, error)
            assert text in error["message"], (name, error)
            assert "data" not in response.json(), name
    assert len(answers["mutation over GET"].headers["allow"]) > 0
    # Nothing hostile was executed: no job exists.
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 0
    # Meanwhile a well-behaved client kept getting answers, quickly.
    assert len(served) >= 5
    assert max(served) < 1.0


async def _keep_asking(base: str, key: str, seconds: float = 2.0) -> list[float]:
    took: list[float] = []
    client = support.GraphQLClient(base, key)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert (await client("{ me { name } }"))["me"]["name"] == "bystander"
            took.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    return took


async def test_legacy_json_clients_get_200_with_errors(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    client = support.GraphQLClient(base, env.create_key("old-client"))
    try:
        response = await client.http.post(
            "/graphql", json={"query": "{ nope }"}, headers={"accept": "application/json"}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        modern = await client.http.post(
            "/graphql", json={"query": "{ me { name } }"}, headers={"accept": GRJ}
        )
        assert modern.headers["content-type"] == f"{GRJ}; charset=utf-8"
        assert modern.json() == {"data": {"me": {"name": "old-client"}}}
    finally:
        await client.aclose()


async def test_production_settings_hide_introspection_and_the_explorer(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(ENV="production")
    client = support.GraphQLClient(base, env.create_key("prod"))
    try:
        body = (await client.raw("{ __schema { types { name } } }")).json()
        assert "introspection" in body["errors"][0]["message"].lower()
        assert (await client("{ __typename }")) == {"__typename": "Query"}
        assert (await client.http.get("/graphiql")).status_code == 404
        # CORS: no origin is allowed unless configured.
        preflight = await client.http.options(
            "/graphql",
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
    finally:
        await client.aclose()


async def test_cors_only_for_configured_origins(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve(ALLOWED_ORIGINS="https://app.example")
    async with httpx.AsyncClient(base_url=base) as http:
        preflight = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        ok = await http.options("/graphql", headers={"origin": "https://app.example", **preflight})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        evil = await http.options(
            "/graphql", headers={"origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in evil.headers


@pytest.mark.parametrize("secret", ["", "changeme-changeme-changeme-changeme", "short"])
def test_settings_refuse_placeholder_secrets_outside_dev(secret: str) -> None:
    with pytest.raises(ValueError, match="secret_key"):
        Settings(env="production", secret_key=secret)
    assert Settings(env="dev", secret_key=secret or "").secret_key.get_secret_value()


def test_serve_refuses_to_start_in_production_without_a_secret(env: support.Env) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "conveyor", "serve", "--port", str(support.free_port())],
        env=env.environ(ENV="production", SECRET_KEY=""),
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stderr
