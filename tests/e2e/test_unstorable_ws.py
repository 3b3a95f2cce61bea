"""Values PostgreSQL cannot store, over a real WebSocket (ADR-0017): queries, mutations,
subscriptions (the shared `jobUpdates` feeds included) and `connection_init` refuse them with
a typed error; the socket and its other operations carry on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import support
from tests.support import ws_connect

NUL = "a\u0000b"


async def _first(ws: support.WSClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async for message in ws.subscribe(query, variables):
        return message
    raise AssertionError("the operation ended without an answer")


def _code_and_path(message: dict[str, Any]) -> tuple[str, list[str]]:
    assert "Traceback" not in json.dumps(message)
    [error] = message["errors"]
    extensions = error["extensions"]
    return extensions["code"], extensions["fieldErrors"][0]["path"]


async def test_websocket_operations_refuse_what_postgresql_cannot_store(
    stack: support.Stack, env: support.Env
) -> None:
    api, base = stack.serve()
    key = env.create_key("admin", admin=True)
    async with ws_connect(base, key) as ws:
        query = "query($f: JobFilter) { jobs(filter: $f) { edges { cursor } } }"
        answer = await _first(ws, query, {"f": {"kind": [NUL]}})
        assert _code_and_path(answer) == ("INVALID_INPUT", ["filter", "kind", "0"])

        cancel = "mutation($f: JobFilter!) { cancelJobs(filter: $f) { count } }"
        answer = await _first(ws, cancel, {"f": {"queue": "q\ud800"}})
        assert _code_and_path(answer) == ("INVALID_INPUT", ["filter", "queue"])

        # A shared feed (jobUpdates) and an ordinary subscription (jobEvents).
        updates = "subscription($f: JobFilter) { jobUpdates(filter: $f) { jobId } }"
        answer = await _first(ws, updates, {"f": {"kind": ["demo.noop", NUL]}})
        assert _code_and_path(answer) == ("INVALID_INPUT", ["filter", "kind", "1"])
        events = 'subscription { jobEvents(jobId: "a\\u0000") { seq } }'
        answer = await _first(ws, events, {})
        assert _code_and_path(answer) == ("INVALID_INPUT", ["jobId"])

        # The same socket still serves.
        answer = await _first(ws, "{ me { name } }", {})
        assert answer == {"data": {"me": {"name": "admin"}}}
    assert "Traceback" not in api.output()


async def test_a_credential_postgresql_could_not_look_up_is_refused_with_4403(
    stack: support.Stack,
) -> None:
    api, base = stack.serve()
    url = base.replace("http://", "ws://") + "/graphql"
    for credential in ("cvk_a\u0000_b", "cvk_\ud800_b", "cvt_\u0000.x"):
        async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {credential}"}}
            await ws.send(json.dumps(init))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403, credential
    assert "Traceback" not in api.output()
