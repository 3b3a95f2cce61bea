"""Shared feeds write `next` frames straight to graphql-transport-ws sockets (ADR-0025): what a
subscriber receives is byte for byte what the slow path sends, a legacy `graphql-ws` member
of the same feed still gets its messages, and nothing follows a client's `complete`."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests import support
from tests.support import GraphQLClient

UPDATES = "subscription { jobUpdates { jobId seq type kind status } }"
SUBMIT = 'mutation { submitJob(input: {kind: "demo.noop", payload: {}}) { ... on Job { id } } }'


async def _open(base: str, key: str, protocol: str) -> ClientConnection:
    ws = await connect(
        base.replace("http://", "ws://") + "/graphql",
        subprotocols=[protocol],  # type: ignore[list-item]
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}})
    )
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "connection_ack":
        pass  # the legacy protocol may send a keepalive first
    return ws


async def _frames_for(
    ws: ClientConnection, job_id: str, op_ids: set[str], timeout: float = 30
) -> list[str]:
    """The raw text of every data message about `job_id` until one for each operation in
    `op_ids` arrived (keepalives and other jobs' messages skipped)."""
    seen: list[str] = []
    pending = set(op_ids)
    async with asyncio.timeout(timeout):
        while pending:
            raw = await ws.recv()
            assert isinstance(raw, str)
            message = json.loads(raw)
            if message.get("type") not in ("next", "data"):
                assert message.get("type") in ("ka", "ping", "pong"), message
                continue
            if message["payload"]["data"]["jobUpdates"]["jobId"] != job_id:
                continue
            seen.append(raw)
            pending.discard(message["id"])
    return seen


async def _direct_frames(base: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    found = re.search(r"^conveyor_ws_direct_frames_total (\S+)$", text, re.MULTILINE)
    assert found, "the counter is exported"
    return float(found.group(1))


async def _submit(client: GraphQLClient) -> str:
    answer: dict[str, Any] = await client(SUBMIT)
    return str(answer["submitJob"]["id"])


async def test_direct_frames_match_the_slow_path(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve()
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    a = await _open(base, key, "graphql-transport-ws")
    b = await _open(base, key, "graphql-transport-ws")
    legacy = await _open(base, key, "graphql-ws")
    subscribe = {"type": "subscribe", "payload": {"query": UPDATES}}
    await a.send(json.dumps({"id": "first", **subscribe}))
    await b.send(json.dumps({"id": "7", **subscribe}))
    await legacy.send(json.dumps({"id": "old", "type": "start", "payload": {"query": UPDATES}}))

    # Until all three are live: a job whose created event reaches every socket.
    while True:
        job = await _submit(client)
        try:
            await _frames_for(a, job, {"first"}, timeout=2)
            await _frames_for(b, job, {"7"}, timeout=2)
            await _frames_for(legacy, job, {"old"}, timeout=2)
            break
        except TimeoutError:
            continue
    before = await _direct_frames(base)

    job = await _submit(client)
    on_a = await _frames_for(a, job, {"first"})
    on_b = await _frames_for(b, job, {"7"})
    on_legacy = await _frames_for(legacy, job, {"old"})
    assert await _direct_frames(base) >= before + 2  # both transport-ws members, directly
    # Byte for byte the slow path's encoding (compact JSON, this key order), ids aside.
    expected = [
        json.dumps(
            {"id": "first", "type": "next", "payload": json.loads(f)["payload"]},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for f in on_a
    ]
    assert on_a == expected
    assert [f.replace('{"id":"first",', '{"id":"7",', 1) for f in on_a] == on_b
    # The legacy member of the same feed got the same updates through its own task.
    assert [json.loads(f)["payload"] for f in on_legacy] == [json.loads(f)["payload"] for f in on_a]

    # A client's `complete` ends its operation: nothing more arrives for it, though the feed
    # goes on (its other operation, subscribed after, proves the feed has moved past).
    await a.send(json.dumps({"id": "first", "type": "complete"}))
    await a.send(json.dumps({"id": "second", **subscribe}))
    while True:
        job = await _submit(client)
        try:
            frames = await _frames_for(a, job, {"second"}, timeout=2)
            break
        except TimeoutError:
            continue
    assert all(json.loads(f)["id"] == "second" for f in frames)
    job = await _submit(client)
    frames = await _frames_for(a, job, {"second"})
    assert [json.loads(f)["id"] for f in frames] == ["second"] * len(frames)

    for ws in (a, b, legacy):
        await ws.close()
    await client.aclose()
    assert uuid.UUID(job)
