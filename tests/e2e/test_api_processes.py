"""`conveyor serve --workers N` (API_WORKERS): several API processes on one port, each a whole
API; a key revoked through one is refused by all, and their live connections are closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal

import psutil
from websockets.exceptions import ConnectionClosed

from tests import support
from tests.support import GraphQLClient, submit, wait_for_status, ws_connect

STATS = "subscription { queueStats { queue } }"


def _api_processes(parent: int) -> list[psutil.Process]:
    """The supervisor's API processes (not multiprocessing's resource tracker)."""
    return [c for c in psutil.Process(parent).children() if "spawn_main" in " ".join(c.cmdline())]


async def _close_code(ws: support.WSClient) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.ws.recv(), timeout=5)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def _holders(parent: int, port: int) -> set[int]:
    """The API processes holding an established connection on `port`."""
    found = set()
    for child in _api_processes(parent):
        for conn in child.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port:
                found.add(child.pid)
    return found


async def test_several_api_processes_share_a_port_and_a_revocation(
    stack: support.Stack, env: support.Env
) -> None:
    api, base = stack.serve(process=True, API_WORKERS="2", REVOCATION_CHECK_SECONDS="30")
    assert isinstance(api, support.Proc)
    port = int(base.rsplit(":", 1)[1])
    children = _api_processes(api.popen.pid)
    assert len(children) == 2
    stack.worker()
    admin = GraphQLClient(base, env.create_key("root", admin=True))
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    jobs = await asyncio.gather(*(submit(client, "demo.noop", {}) for _ in range(20)))
    for job in jobs:
        await wait_for_status(client, job["id"], "SUCCEEDED")

    async with contextlib.AsyncExitStack() as sockets:
        opened: list[support.WSClient] = []
        # Open connections until both processes hold some (the kernel picks the acceptor).
        while len(opened) < 4 or len(_holders(api.popen.pid, port)) < 2:
            assert len(opened) < 40, "every connection went to one process"
            ws = await sockets.enter_async_context(ws_connect(base, key))
            subscribe = {"id": "1", "type": "subscribe", "payload": {"query": STATS}}
            await ws.ws.send(json.dumps(subscribe))
            opened.append(ws)
        key_id = (await client("{ me { id } }"))["me"]["id"]
        revoked = await admin(
            "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }", {"id": key_id}
        )
        assert revoked["revokeApiKey"]["__typename"] == "ApiKey"
        # Every process closes its connections of the key at once (through Redis) ...
        assert [await _close_code(ws) for ws in opened] == [4403] * len(opened)
    # ... and refuses it on new requests, whichever process answers.
    for _ in range(10):
        fresh = GraphQLClient(base, key)
        assert (await fresh.raw("{ me { id } }")).status_code == 401
        await fresh.aclose()
    await client.aclose()
    await admin.aclose()

    # SIGTERM stops every process and the command exits 0.
    api.popen.send_signal(signal.SIGTERM)
    assert api.popen.wait(timeout=30) == 0
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
