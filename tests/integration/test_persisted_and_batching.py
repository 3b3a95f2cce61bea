"""Automatic persisted queries, trusted documents and HTTP batching (in-process API, real
PostgreSQL and Redis). The real clients (Apollo, urql, gql) are run in tests/clients/."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.api import persisted
from conveyor.main import create_app
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api

ME = "query Me { me { name role } }"
RESPONSE = "application/graphql-response+json"


def _hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def _apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def _post(api: Api, key: str, body: object, accept: str = RESPONSE) -> httpx.Response:
    async with httpx.AsyncClient(base_url="http://test", transport=api.transport) as http:
        return await http.post(
            "/graphql",
            content=json.dumps(body),
            headers={
                "authorization": f"Bearer {key}",
                "content-type": "application/json",
                "accept": accept,
            },
        )


async def _get(api: Api, key: str, params: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url="http://test", transport=api.transport) as http:
        return await http.get("/graphql", params=params, headers={"authorization": f"Bearer {key}"})


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_apq_not_found_then_registered_then_served_by_hash(api: Api) -> None:
    key = await api.key("alice")
    digest = _hash(ME)
    # Apollo's flow: the hash alone, NOT_FOUND; then hash and document; then the hash alone.
    first = await _post(api, key, {"extensions": _apq(digest)}, accept="application/json")
    assert first.status_code == 200
    assert _code(first) == "PERSISTED_QUERY_NOT_FOUND"
    assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = await _post(api, key, {"query": ME, "extensions": _apq(digest)})
    assert registered.json() == {"data": {"me": {"name": "alice", "role": "SUBMITTER"}}}
    again = await _post(api, key, {"extensions": _apq(digest), "operationName": "Me"})
    assert again.status_code == 200
    assert again.json()["data"]["me"]["name"] == "alice"
    # GET, as Apollo's `useGETForHashedQueries` sends it.
    got = await _get(api, key, {"extensions": json.dumps(_apq(digest))})
    assert got.json()["data"]["me"]["name"] == "alice"


async def test_apq_is_shared_through_redis_and_survives_its_loss(
    api: Api, settings: Settings
) -> None:
    key = await api.key("alice")
    digest = _hash(ME)
    await _post(api, key, {"query": ME, "extensions": _apq(digest)})
    # Another API process (a second app on the same Redis) knows the hash.
    other = create_app(settings)
    async with support.started(other) as running:
        async with httpx.AsyncClient(
            base_url="http://test", transport=httpx.ASGITransport(app=running)
        ) as http:
            answer = await http.post(
                "/graphql",
                json={"extensions": _apq(digest)},
                headers={"authorization": f"Bearer {key}"},
            )
        assert answer.json()["data"]["me"]["name"] == "alice"
    # Losing the cache costs a re-registration, nothing more.
    redis = Redis.from_url(support.REDIS_URL)
    try:
        await redis.delete(f"{settings.redis_prefix}:apq:docs", f"{settings.redis_prefix}:apq:lru")
    finally:
        await redis.aclose()
    async with (
        support.started(create_app(settings)) as running,
        httpx.AsyncClient(
            base_url="http://test", transport=httpx.ASGITransport(app=running)
        ) as http,
    ):
        lost = await http.post(
            "/graphql",
            json={"extensions": _apq(digest)},
            headers={"authorization": f"Bearer {key}", "accept": RESPONSE},
        )
    assert lost.status_code == 400
    assert _code(lost) == "PERSISTED_QUERY_NOT_FOUND"


async def test_apq_refuses_a_wrong_hash_and_never_keeps_what_does_not_validate(
    api: Api, settings: Settings
) -> None:
    key = await api.key("alice")
    wrong = await _post(api, key, {"query": ME, "extensions": _apq("0" * 64)})
    assert wrong.status_code == 400
    assert _code(wrong) == "PERSISTED_QUERY_HASH_MISMATCH"
    malformed = await _post(api, key, {"extensions": _apq("not-a-hash")})
    assert malformed.status_code == 400
    assert _code(malformed) == "BAD_REQUEST"
    invalid = "{ nope }"
    refused = await _post(api, key, {"query": invalid, "extensions": _apq(_hash(invalid))})
    assert refused.status_code == 400
    assert _code(refused) == "GRAPHQL_VALIDATION_FAILED"
    redis = Redis.from_url(support.REDIS_URL)
    try:
        assert not await redis.hexists(f"{settings.redis_prefix}:apq:docs", _hash(invalid))
        assert not await redis.hexists(f"{settings.redis_prefix}:apq:docs", "0" * 64)
    finally:
        await redis.aclose()


async def test_the_apq_cache_is_bounded_least_recently_used_first(env: support.Env) -> None:
    redis = Redis.from_url(support.REDIS_URL)
    try:
        cache = persisted.Persisted(redis, env.prefix, cache_size=3, trusted=None, local_size=1)
        docs = [f"query Q{i} {{ me {{ name }} }}" for i in range(5)]
        for doc in docs[:3]:
            await cache.register(_hash(doc), doc)
        # Q0 used again: Q1, the least recently used, goes when Q3 and Q4 arrive.
        assert (await cache.resolve({"extensions": _apq(_hash(docs[0]))})).query == docs[0]
        await cache.register(_hash(docs[3]), docs[3])
        await cache.register(_hash(docs[4]), docs[4])
        kept = await redis.hkeys(f"{env.prefix}:apq:docs")
        assert sorted(k.decode() for k in kept) == sorted(_hash(d) for d in (docs[0], *docs[3:]))
        assert await redis.zcard(f"{env.prefix}:apq:lru") == 3
    finally:
        await redis.aclose()


class TestWithAPQOff:
    @pytest.fixture
    def settings(self, env: support.Env) -> Settings:
        return Settings(
            database_url=env.database_url,
            redis_url=support.REDIS_URL,
            redis_prefix=env.prefix,
            secret_key=support.SECRET_KEY,
            graphql_apq_cache_size=0,
        )

    async def test_a_hash_gets_not_supported_so_clients_fall_back(self, api: Api) -> None:
        key = await api.key("alice")
        answer = await _post(api, key, {"extensions": _apq(_hash(ME))}, accept="application/json")
        assert answer.status_code == 200
        assert _code(answer) == "PERSISTED_QUERY_NOT_SUPPORTED"
        plain = await _post(api, key, {"query": ME})
        assert plain.json()["data"]["me"]["name"] == "alice"


MANIFEST_DOC = (
    "query Mine($first: Int) { jobs(first: $first) { totalCount edges { node { id } } } }"
)


class TestTrustedDocuments:
    @pytest.fixture
    def settings(self, env: support.Env, tmp_path: Path) -> Settings:
        manifest = tmp_path / "operations.json"
        manifest.write_text(
            json.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": [
                        {"id": _hash(MANIFEST_DOC), "body": MANIFEST_DOC, "name": "Mine"}
                    ],
                }
            )
        )
        return Settings(
            database_url=env.database_url,
            redis_url=support.REDIS_URL,
            redis_prefix=env.prefix,
            secret_key=support.SECRET_KEY,
            graphql_trusted_documents=True,
            graphql_trusted_manifests=str(manifest),
        )

    async def test_only_manifest_operations_run(self, api: Api) -> None:
        key = await api.key("alice")
        # By id (APQ's field, or `documentId`), or by text in another layout.
        by_hash = await _post(api, key, {"extensions": _apq(_hash(MANIFEST_DOC))})
        assert by_hash.json()["data"]["jobs"]["totalCount"] == 0
        by_id = await _post(api, key, {"documentId": f"sha256:{_hash(MANIFEST_DOC)}"})
        assert by_id.json()["data"]["jobs"]["totalCount"] == 0
        reordered = (
            "query Mine($first: Int) {\n jobs(first: $first) { edges { node { id } } totalCount } }"
        )
        assert (await _post(api, key, {"query": reordered})).json()["data"]["jobs"]["edges"] == []
        # Anything else is refused, with a code that says why, and nothing registers.
        other = await _post(api, key, {"query": ME})
        assert other.status_code == 400
        assert _code(other) == "OPERATION_NOT_TRUSTED"
        assert "GRAPHQL_TRUSTED_DOCUMENTS" in other.json()["errors"][0]["message"]
        unknown = await _post(api, key, {"extensions": _apq(_hash(ME))})
        assert _code(unknown) == "PERSISTED_QUERY_NOT_FOUND"
        register = await _post(api, key, {"query": ME, "extensions": _apq(_hash(ME))})
        assert _code(register) == "OPERATION_NOT_TRUSTED"
        more = MANIFEST_DOC.replace("{ id }", "{ id payload }")
        assert _code(await _post(api, key, {"query": more})) == "OPERATION_NOT_TRUSTED"

    async def test_the_dashboards_own_operations_are_trusted(self, api: Api) -> None:
        key = await api.key("alice")
        dashboard = json.loads(persisted.DASHBOARD_MANIFEST.read_text())
        me = next(doc for doc in dashboard.values() if doc.startswith("query Me "))
        answer = await _post(api, key, {"query": me})
        assert answer.json()["data"]["me"]["name"] == "alice"


def test_every_dashboard_operation_is_in_its_manifest() -> None:
    """The operations frontend/src sends (as urql prints them: the operation and the fragments
    it spreads) match the committed manifest, whatever its order and layout."""
    source = (support.ROOT / "frontend" / "src" / "lib" / "operations.ts").read_text()
    snippets = [part.split("`")[0] for part in source.split("graphql(`")[1:]]
    fragments = {s.split()[1]: s for s in snippets if s.strip().startswith("fragment")}
    trusted = persisted.TrustedDocuments.load([persisted.DASHBOARD_MANIFEST])
    operations = [s for s in snippets if not s.strip().startswith("fragment")]
    assert len(operations) >= 10
    for op in operations:
        doc = op
        pending = [n for n in fragments if f"...{n}" in op]
        while pending:
            name = pending.pop()
            if fragments[name] not in doc:
                doc += fragments[name]
                pending += [n for n in fragments if f"...{n}" in fragments[name]]
        assert trusted.allows(doc), doc


def test_a_manifest_whose_ids_are_not_the_documents_hashes_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({f"sha256:{'0' * 64}": ME}))
    with pytest.raises(persisted.ManifestError, match="not the sha256"):
        persisted.TrustedDocuments.load([bad])


async def test_a_batch_answers_each_operation_in_order(api: Api) -> None:
    key = await api.key("alice")
    batch = [
        {"query": ME},
        {"query": "{ nope }"},
        {"query": support.SUBMIT, "variables": {"input": {"kind": "demo.noop", "payload": {}}}},
        {"extensions": _apq(_hash(ME))},
        "not an operation",
    ]
    answer = await _post(api, key, batch)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(RESPONSE)
    me, invalid, submitted, unknown, junk = answer.json()
    assert me == {"data": {"me": {"name": "alice", "role": "SUBMITTER"}}}
    assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert submitted["data"]["submitJob"]["__typename"] == "Job"
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert junk["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_batch_is_bounded_and_never_empty(api: Api, settings: Settings) -> None:
    key = await api.key("alice")
    too_many = await _post(api, key, [{"query": ME}] * (settings.graphql_max_batch + 1))
    assert too_many.status_code == 400
    assert _code(too_many) == "BATCH_TOO_LARGE"
    assert str(settings.graphql_max_batch) in too_many.json()["errors"][0]["message"]
    empty = await _post(api, key, [])
    assert empty.status_code == 400


async def test_each_operation_of_a_batch_is_costed_and_rate_limited(
    api: Api, env: support.Env
) -> None:
    admin = await api.key("admin", admin=True)
    set_policy = """mutation { setPolicy(expectedVersion: 0, input: {
        submitRatePerSecond: 0.001, submitBurst: 2 }) { __typename } }"""
    assert (await api.client(admin)(set_policy))["setPolicy"]["__typename"] == "Policy"
    submit = {"query": support.SUBMIT, "variables": {"input": {"kind": "demo.noop", "payload": {}}}}
    costly = "{ jobs(first: 500) { edges { node { events(first: 1000) { seq } } } } }"
    answers = (await _post(api, admin, [submit, submit, submit, {"query": costly}])).json()
    kinds = [a["data"]["submitJob"]["__typename"] for a in answers[:3]]
    assert kinds == ["Job", "Job", "PolicyDenied"]
    assert answers[3]["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    [row] = await env.sql("SELECT count(*) AS n FROM jobs")
    assert row["n"] == 2
