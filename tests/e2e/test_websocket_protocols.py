"""Both WebSocket subprotocols against a real server: `graphql-transport-ws` and the legacy
`graphql-ws` (subscriptions-transport-ws) get the same authentication, caps, keepalive,
time limits and revocation; a handshake with neither gets a close that says why."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests import support
from tests.support import JOB_EVENTS, GraphQLClient, submit

STATS = "subscription { queueStats(interval: 0.5) { queue waiting } }"
LEGACY = "graphql-ws"
TRANSPORT = "graphql-transport-ws"


class Socket:
    """One protocol's client side: start/stop vs subscribe/complete, data vs next."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def start(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        kind = "start" if self.protocol == LEGACY else "subscribe"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": op_id, "type": kind, "payload": payload})

    async def stop(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "stop" if self.protocol == LEGACY else "complete"})

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            msg: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if msg.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return msg

    async def next(self, op_id: str, timeout: float = 10) -> dict[str, Any]:
        """The next message for `op_id`, as {type: next|error|complete, payload}: the legacy
        protocol's `data` is `next`, and its one error object becomes a list."""
        while True:
            msg = await self.recv(timeout)
            if msg.get("id") != op_id:
                continue
            if msg["type"] == "data":
                msg = {**msg, "type": "next"}
            if msg["type"] == "error" and isinstance(msg.get("payload"), dict):
                msg = {**msg, "payload": [msg["payload"]]}
            return msg


@asynccontextmanager
async def opened(base: str, protocol: str) -> AsyncIterator[Socket]:
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == protocol
        yield Socket(ws, protocol)


@asynccontextmanager
async def signed_in(base: str, protocol: str, key: str) -> AsyncIterator[Socket]:
    async with opened(base, protocol) as socket:
        await socket.send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}
        )
        assert (await socket.recv())["type"] == "connection_ack"
        yield socket


async def _closed(socket: Socket) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes: (code, reason, messages seen meanwhile)."""
    seen: list[dict[str, Any]] = []

    async def read_all() -> None:
        while True:
            seen.append(await socket.recv(timeout=10))

    with pytest.raises(ConnectionClosed) as closed:
        await read_all()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, seen


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_same_auth_caps_and_limits_on_both_protocols(
    stack: support.Stack, env: support.Env, protocol: str
) -> None:
    _, base = stack.serve(WS_INIT_TIMEOUT_SECONDS="1", MAX_SUBSCRIPTIONS_PER_CONNECTION="2")
    key = env.create_key("alice")
    # A wrong key: 4403, and the legacy protocol says why first (gql raises it).
    async with opened(base, protocol) as socket:
        await socket.send({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        code, _, seen = await _closed(socket)
        assert code == 4403
        if protocol == LEGACY:
            assert seen[0]["type"] == "connection_error"
            assert seen[0]["payload"]["code"] == "UNAUTHENTICATED"
    # No connection_init in time: 4408.
    async with opened(base, protocol) as socket:
        code, reason, _ = await _closed(socket)
        assert (code, reason) == (4408, "Connection initialisation timeout")
    async with signed_in(base, protocol, key) as socket:
        # A second connection_init: 4429 on both.
        await socket.send({"type": "connection_init", "payload": {}})
        assert (await _closed(socket))[0] == 4429
    async with signed_in(base, protocol, key) as socket:
        # A bad operation is an error for it alone; queries run too.
        await socket.start("bad", "subscription { queueStats(")
        bad = await socket.next("bad")
        assert bad["type"] == "error"
        assert "Syntax Error" in bad["payload"][0]["message"]
        await socket.start("q", "{ me { name } }")
        assert (await socket.next("q"))["payload"]["data"]["me"]["name"] == "alice"
        assert (await socket.next("q"))["type"] == "complete"
        # At most two operations at once.
        await socket.start("one", STATS)
        await socket.start("two", STATS)
        await socket.next("one")
        await socket.next("two")
        await socket.start("three", STATS)
        capped = await socket.next("three")
        assert capped["type"] == "error"
        assert "limit" in capped["payload"][0]["message"].lower()
        # Stopping one frees its place.
        await socket.stop("one")
        await asyncio.sleep(0.2)
        await socket.start("four", STATS)
        assert (await socket.next("four"))["type"] == "next"


async def test_legacy_protocol_survives_malformed_messages(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    key = env.create_key("alice")
    async with signed_in(base, LEGACY, key) as socket:
        await socket.send({"id": "a", "type": "start"})
        assert (await socket.next("a"))["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
        await socket.send(
            {"id": "b", "type": "start", "payload": {"query": "{ me { name } }", "variables": [1]}}
        )
        assert (await socket.next("b"))["type"] == "error"
        await socket.send({"type": "unknown"})
        await socket.start("c", "{ me { name } }")
        assert (await socket.next("c"))["payload"]["data"]["me"]["name"] == "alice"
        await socket.ws.send("[1, 2]")
        code, reason, _ = await _closed(socket)
        assert (code, reason) == (4400, "Invalid message")
    async with opened(base, LEGACY) as socket:
        await socket.start("early", "{ me { name } }")
        assert (await _closed(socket))[0] == 4401


async def test_legacy_protocol_streams_job_events_keeps_alive_and_is_revoked(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker()
    admin = GraphQLClient(base, env.create_key("admin", admin=True))
    created = await admin(
        'mutation { createApiKey(name: "bob", role: SUBMITTER) {'
        " ... on CreatedApiKey { key apiKey { id } } } }"
    )
    bob_key = created["createApiKey"]["key"]
    bob = GraphQLClient(base, bob_key)
    job = await submit(bob, "demo.sleep", {"steps": 2, "stepSeconds": 0.05})
    async with signed_in(base, LEGACY, bob_key) as socket:
        assert (await socket.recv())["type"] == "ka"  # keepalive, at once after the ack
        await socket.start("1", JOB_EVENTS, {"id": job["id"]})
        seen = []
        while (msg := await socket.next("1"))["type"] == "next":
            seen.append(msg["payload"]["data"]["jobEvents"])
        assert msg["type"] == "complete"
        assert seen[-1]["status"] == "SUCCEEDED"
        assert [e["seq"] for e in seen] == sorted({e["seq"] for e in seen})
        await socket.start("live", STATS)
        await socket.next("live")
        revoked = await admin(
            "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }",
            {"id": created["createApiKey"]["apiKey"]["id"]},
        )
        assert revoked["revokeApiKey"]["__typename"] == "ApiKey"
        assert (await _closed(socket))[0] == 4403
    await admin.aclose()
    await bob.aclose()


@pytest.mark.parametrize("offered", [[], ["graphql-sse"], ["subscriptions-transport-ws-9"]])
async def test_a_handshake_without_a_supported_subprotocol_is_told_why(
    stack: support.Stack, offered: list[str]
) -> None:
    _, base = stack.serve()
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=offered or None) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406
    assert "graphql-transport-ws" in closed.value.rcvd.reason
    assert "graphql-ws" in closed.value.rcvd.reason


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_trusted_documents_apply_over_websockets(
    stack: support.Stack, env: support.Env, tmp_path: Path, protocol: str
) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"me": "query Me { me { name } }"}))
    _, base = stack.serve(GRAPHQL_TRUSTED_DOCUMENTS="true", GRAPHQL_TRUSTED_MANIFESTS=str(manifest))
    async with signed_in(base, protocol, env.create_key("alice")) as socket:
        await socket.start("ok", "query Me {\n  me { name }\n}")
        assert (await socket.next("ok"))["payload"]["data"]["me"]["name"] == "alice"
        await socket.start("no", STATS)
        refused = await socket.next("no")
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "OPERATION_NOT_TRUSTED"
