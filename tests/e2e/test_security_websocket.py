"""WebSockets against a real `conveyor serve`: tenant isolation of every subscription,
revocation closing live subscriptions, and the protocol limits."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conveyor.services import auth
from tests import support
from tests.support import JOB_EVENTS, GraphQLClient, submit, ws_connect

UPDATES = "subscription { jobUpdates { jobId type status } }"
STATS = "subscription { queueStats(interval: 0.5) { queue waiting } }"


def _tenant_keys(env: support.Env, tenant: str) -> dict[str, str]:
    env.cli("create-tenant", "--name", tenant)
    return {
        role: env.cli(
            "create-api-key", "--name", f"{tenant}-{role}", "--tenant", tenant, "--role", role
        )
        .strip()
        .splitlines()[-1]
        for role in ("admin", "submitter")
    }


async def _next(ws: support.WSClient, op_id: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.ws.recv(), timeout=timeout))
        if msg.get("type") == "ping":
            await ws.ws.send(json.dumps({"type": "pong"}))
            continue
        if msg.get("id") == op_id:
            return msg  # type: ignore[no-any-return]


async def _send(
    ws: support.WSClient, op_id: str, query: str, variables: dict | None = None
) -> None:  # type: ignore[type-arg]
    await ws.ws.send(
        json.dumps(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )
    )


async def test_subscriptions_never_cross_tenants(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve()
    acme, globex = _tenant_keys(env, "acme"), _tenant_keys(env, "globex")
    acme_http = GraphQLClient(base, acme["submitter"])
    globex_http = GraphQLClient(base, globex["submitter"])
    theirs = await submit(globex_http, "demo.sleep", {})
    async with ws_connect(base, acme["admin"]) as ws:
        # jobEvents of another tenant's job: an error for that operation only.
        await _send(ws, "1", JOB_EVENTS, {"id": theirs["id"]})
        refused = await _next(ws, "1")
        assert refused["type"] in ("error", "next")
        errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
        # jobUpdates: globex's changes never arrive, acme's do.
        await _send(ws, "2", UPDATES)
        await asyncio.sleep(0.3)
        await submit(globex_http, "demo.noop", {})
        ours = await submit(acme_http, "demo.noop", {})
        update = await _next(ws, "2")
        assert update["payload"]["data"]["jobUpdates"]["jobId"] == ours["id"]
        # queueStats: counts of the caller's tenant only (acme has one waiting job).
        await _send(ws, "3", STATS)
        stats = (await _next(ws, "3"))["payload"]["data"]["queueStats"]
        assert {q["queue"]: q["waiting"] for q in stats}["default"] == 1
    await acme_http.aclose()
    await globex_http.aclose()


async def test_revoking_a_key_closes_its_live_subscriptions_and_tokens(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(REVOCATION_CHECK_SECONDS="30")  # the Redis message must do it
    keys = _tenant_keys(env, "acme")
    admin = GraphQLClient(base, keys["admin"])
    submitter = GraphQLClient(base, keys["submitter"])
    job = await submit(submitter, "demo.sleep", {})
    minted = await submitter(
        "mutation($j: ID) { createToken(jobId: $j) { ... on Token { token } } }", {"j": job["id"]}
    )
    token = minted["createToken"]["token"]
    key_id = (await submitter("{ me { id } }"))["me"]["id"]
    async with ws_connect(base, keys["submitter"]) as by_key, ws_connect(base, token) as by_token:
        for ws in (by_key, by_token):
            await _send(ws, "1", JOB_EVENTS, {"id": job["id"]})
            assert (await _next(ws, "1"))["payload"]["data"]["jobEvents"]["type"] == "SNAPSHOT"
        revoked = await admin(
            "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }", {"id": key_id}
        )
        assert revoked["revokeApiKey"]["__typename"] == "ApiKey"
        for ws in (by_key, by_token):
            with pytest.raises(ConnectionClosed) as closed:
                await _next(ws, "1", timeout=3)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4403
    assert (await submitter.raw("{ me { id } }")).status_code == 401
    await admin.aclose()
    await submitter.aclose()


async def test_expired_or_db_revoked_keys_are_closed_by_the_periodic_check(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(REVOCATION_CHECK_SECONDS="0.5")
    key = env.create_key("alice")
    async with ws_connect(base, key) as ws:
        await _send(ws, "1", STATS)
        await _next(ws, "1")
        await env.sql("UPDATE api_keys SET expires_at = now() WHERE name = 'alice'")
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(ws, "1")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403


async def test_protocol_limits(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve(WS_INIT_TIMEOUT_SECONDS="1", MAX_SUBSCRIPTIONS_PER_CONNECTION="2")
    url = base.replace("http://", "ws://") + "/graphql"
    key = env.create_key("alice")
    # connection_init must come quickly.
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4408
    async with ws_connect(base, key) as ws:
        # A syntax error in one subscription is an error for it; the socket stays usable.
        await _send(ws, "bad", "subscription { queueStats(")
        bad = await _next(ws, "bad")
        assert bad["type"] == "error"
        assert "Syntax Error" in bad["payload"][0]["message"]
        await _send(ws, "unknown-op", STATS.replace("subscription", "subscription A"))
        await ws.ws.send(
            json.dumps(
                {
                    "id": "unknown-name",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription A { queueStats { queue } }",
                        "operationName": "B",
                    },
                }
            )
        )
        assert (await _next(ws, "unknown-name"))["type"] == "error"
        await _next(ws, "unknown-op")
        # A per-connection cap on active operations.
        await _send(ws, "two", STATS)
        await _next(ws, "two")
        await _send(ws, "three", STATS)
        capped = await _next(ws, "three")
        assert capped["type"] == "error"
        assert "limit" in capped["payload"][0]["message"].lower()


async def test_websocket_upgrades_from_unknown_origins_are_refused(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(ALLOWED_ORIGINS="https://app.example")
    url = base.replace("http://", "ws://") + "/graphql"
    key = env.create_key("alice")
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        await _handshake(url, "https://evil.example", key)
    assert await _handshake(url, "https://app.example", key) == "connection_ack"


async def _handshake(url: str, origin: str, key: str) -> str:
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
    ) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}
        await ws.send(json.dumps(init))
        return str(json.loads(await asyncio.wait_for(ws.recv(), timeout=5))["type"])


async def _drain(ws: support.WSClient, op_id: str) -> None:
    while True:
        await _next(ws, op_id, timeout=5)


async def test_queries_over_websocket_have_the_time_limit_and_the_socket_carries_on(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(GRAPHQL_TIMEOUT_SECONDS="0.5")
    key = env.create_key("alice")
    locker = await asyncpg.connect(support.pg_url(env.database, "postgresql"))
    try:
        async with ws_connect(base, key) as ws:
            await _send(ws, "live", STATS)
            await _next(ws, "live")
            # A query stuck behind a lock: an error for it after the limit, nothing else.
            async with locker.transaction():
                await locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
                await _send(ws, "slow", "{ jobs { totalCount } }")
                slow = await _next(ws, "slow", timeout=10)
            assert slow["type"] == "error"
            assert slow["payload"][0]["extensions"]["code"] == "TIMEOUT"
            await _send(ws, "quick", "{ jobs { totalCount } }")
            assert (await _next(ws, "quick"))["payload"]["data"]["jobs"]["totalCount"] == 0
            # Subscriptions have no time limit: the one opened first still streams.
            await asyncio.sleep(0.6)
            assert (await _next(ws, "live"))["type"] == "next"
    finally:
        await locker.close()


async def test_refused_documents_over_websocket(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve()
    key = env.create_key("alice")
    nested = (
        "jobs(first: 500) { edges { node { events(first: 1000) { job { events { seq } } } } } }"
    )
    async with ws_connect(base, key) as ws:
        await _send(ws, "costly", "{ " + " ".join(f"a{i}: {nested}" for i in range(30)) + " }")
        costly = await _next(ws, "costly")
        assert costly["type"] == "error"
        assert costly["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        await _send(ws, "fine", "{ me { name } }")
        assert (await _next(ws, "fine"))["payload"]["data"]["me"]["name"] == "alice"


async def test_json_nested_too_deeply_over_websocket_is_invalid_json(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    async with ws_connect(base, env.create_key("alice")) as ws:
        # Deeper than the JSON parser goes: invalid JSON (4400), not a crashed handler.
        await ws.ws.send('{"type": "ping", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}")
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(ws, "none")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400


async def test_a_socket_opened_with_a_token_is_closed_when_the_token_expires(
    stack: support.Stack, env: support.Env
) -> None:
    # The periodic key re-check is far away: the token's own expiry must close the socket.
    _, base = stack.serve(REVOCATION_CHECK_SECONDS="300")
    keys = _tenant_keys(env, "acme")
    submitter = GraphQLClient(base, keys["submitter"])
    job = await submit(submitter, "demo.sleep", {})
    me = (await submitter("{ me { id tenantId } }"))["me"]
    # createToken's shortest lifetime is a minute: sign a 3-second token as the server would.
    token = auth.sign_token(
        support.SECRET_KEY,
        {
            "key": me["id"],
            "tenant": me["tenantId"],
            "scope": f"job:{job['id']}",
            "exp": int(time.time()) + 3,
        },
    )
    async with ws_connect(base, token) as ws:
        await _send(ws, "1", JOB_EVENTS, {"id": job["id"]})
        assert (await _next(ws, "1"))["payload"]["data"]["jobEvents"]["type"] == "SNAPSHOT"
        opened = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(ws, "1")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
        assert time.monotonic() - opened < 4.5
    browser = GraphQLClient(base, token)
    assert (await browser.raw("{ me { name } }")).status_code == 401
    await browser.aclose()
    await submitter.aclose()
