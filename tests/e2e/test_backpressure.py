"""Subscription caps, slow consumers, and stopping an API that holds live subscriptions."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import support
from tests.support import GraphQLClient, ws_connect

UPDATES = "subscription { jobUpdates { jobId seq type kind } }"
BATCHES = 5
SUBMIT_MANY = (
    """mutation($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { __typename } }"""
)


async def _open(base: str, key: str, rcvbuf: int | None = None):  # type: ignore[no-untyped-def]
    sock = None
    if rcvbuf is not None:
        # A small receive window, so that a client that stops reading pushes back at once
        # instead of after megabytes of loopback buffering.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    ws = await connect(
        base.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        sock=sock,
        ping_interval=None,  # a client that stops reading must not time itself out first
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def _subscribe(ws, op_id: str, query: str = UPDATES) -> None:  # type: ignore[no-untyped-def]
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))


async def test_subscription_caps_per_connection_and_per_process(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(MAX_SUBSCRIPTIONS_PER_CONNECTION="2", MAX_SUBSCRIPTIONS_PER_PROCESS="3")
    key = env.create_key("alice")
    first = await _open(base, key)
    for op in ("1", "2", "3"):
        await _subscribe(first, op)
    refused = json.loads(await asyncio.wait_for(first.recv(), 10))
    assert refused["id"] == "3"
    assert refused["type"] == "error"
    assert "limit" in refused["payload"][0]["message"].lower()
    second = await _open(base, key)
    await _subscribe(second, "a")
    await _subscribe(second, "b")
    over = json.loads(await asyncio.wait_for(second.recv(), 10))
    assert over["id"] == "b"
    assert over["payload"]["errors"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    await first.close()
    await second.close()


async def test_a_stalled_subscriber_is_dropped_and_does_not_delay_others(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(WS_PING_INTERVAL_SECONDS="1", WS_PING_TIMEOUT_SECONDS="2")
    key = env.create_key("alice")
    slow = await _open(base, key, rcvbuf=4096)
    await _subscribe(slow, "1")  # and then never read
    client = GraphQLClient(base, key)
    updates: asyncio.Queue[dict] = asyncio.Queue()
    async with ws_connect(base, key) as fast:
        collector = asyncio.create_task(_collect(fast.subscribe(UPDATES), updates))
        while True:  # until the fast subscription is live
            await client(SUBMIT_MANY, {"inputs": [{"kind": "demo.sleep", "payload": {}}]})
            try:
                await asyncio.wait_for(updates.get(), timeout=0.5)
                break
            except TimeoutError:
                continue
        for _ in range(BATCHES):
            inputs = [{"kind": "demo.noop", "payload": {}}] * 1000
            await client(SUBMIT_MANY, {"inputs": inputs})
        received = 0
        while received < BATCHES * 1000:
            update = await asyncio.wait_for(updates.get(), timeout=60)
            received += update["kind"] == "demo.noop"
        collector.cancel()
    await client.aclose()
    # The server dropped the client that stopped reading (4429 once its buffer overflowed, or
    # the keepalive it could not answer): its subscription is released. Checked on the server
    # (`/metrics`), where memory is at stake: the client itself may learn it late, because the
    # kernel can keep an orphaned socket with unsent data behind the stalled client's zero
    # window and later drop it without a reset.
    async with httpx.AsyncClient() as http:
        async with asyncio.timeout(60):
            while True:
                scraped = (await http.get(f"{base}/metrics")).text
                if "conveyor_open_subscriptions 0.0" in scraped:
                    break
                await asyncio.sleep(0.5)
    slow.transport.abort()


async def _collect(subscription, out: asyncio.Queue[dict]) -> None:  # type: ignore[no-untyped-def]
    async for msg in subscription:
        await out.put(msg["data"]["jobUpdates"])


async def test_stopping_the_api_closes_live_subscriptions_cleanly(
    stack: support.Stack, env: support.Env
) -> None:
    api, base = stack.serve(process=True)
    key = env.create_key("alice")
    ws = await _open(base, key)
    await _subscribe(ws, "1")
    await asyncio.sleep(0.3)
    api.popen.terminate()
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 15)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code in (1001, 1012)  # going away / service restart
    # A clean stop on SIGTERM is a success, not death by the signal (-15).
    assert await asyncio.to_thread(api.popen.wait, 15) == 0
