"""End to end: real `conveyor serve` and `conveyor worker` processes, a client over HTTP and a
real WebSocket, PostgreSQL and Redis underneath."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests import support
from tests.support import JOB, JOB_EVENTS, GraphQLClient, submit, wait_for_status, ws_connect


async def _collect(ws: support.WSClient, job_id: str, after: int | None = None) -> list[dict]:
    out = []
    async for msg in ws.subscribe(JOB_EVENTS, {"id": job_id, "after": after}):
        assert "errors" not in msg, msg
        out.append(msg["data"]["jobEvents"])
    return out


async def test_submit_run_and_follow_a_job_live(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve()
    stack.worker()
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    job = await submit(client, "demo.sleep", {"steps": 20, "stepSeconds": 0.05})
    async with ws_connect(base, key) as ws:
        events = await _collect(ws, job["id"])
    await client.aclose()

    # First a snapshot carrying the latest stored seq, then every later event once, in order.
    assert events[0]["type"] == "SNAPSHOT"
    live = events[1:]
    seqs = [e["seq"] for e in live]
    assert seqs == list(range(events[0]["seq"] + 1, events[0]["seq"] + 1 + len(live)))
    assert live[-1]["type"] == "SUCCEEDED"
    assert live[-1]["status"] == "SUCCEEDED"
    progress = [e["progress"] for e in live if e["type"] == "PROGRESS"]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0

    # PostgreSQL holds the job, its attempt and every event, gapless from 1.
    rows = await env.sql("SELECT status, result, attempt FROM jobs WHERE id = $1::uuid", job["id"])
    assert (rows[0]["status"], rows[0]["attempt"]) == ("SUCCEEDED", 1)
    attempts = await env.sql(
        "SELECT number, status, worker_id, finished_at FROM job_attempts WHERE job_id = $1::uuid",
        job["id"],
    )
    assert [(a["number"], a["status"]) for a in attempts] == [(1, "SUCCEEDED")]
    assert attempts[0]["worker_id"]
    assert attempts[0]["finished_at"]
    stored = await env.sql(
        "SELECT seq, type FROM job_events WHERE job_id = $1::uuid ORDER BY seq", job["id"]
    )
    assert [s["seq"] for s in stored] == list(range(1, len(stored) + 1))
    assert [s["type"] for s in stored][:2] == ["SUBMITTED", "STARTED"]
    assert stored[-1]["type"] == "SUCCEEDED"
    assert {s["seq"] for s in stored} >= set(seqs)


async def test_subscribing_with_after_replays_exactly_the_missing_events(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker()
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    job = await submit(client, "demo.sleep", {"steps": 30, "stepSeconds": 0.1})
    # Wait until the job is well under way, then pick a seq in the middle of what is stored.
    while True:
        stored = (await client(JOB, {"id": job["id"]}))["job"]["events"]
        if len(stored) >= 8:
            break
        await asyncio.sleep(0.1)
    after = stored[4]["seq"]
    async with ws_connect(base, key) as ws:
        events = await _collect(ws, job["id"], after=after)
    final = (await client(JOB, {"id": job["id"]}))["job"]
    await client.aclose()
    assert final["status"] == "SUCCEEDED"
    assert [e["seq"] for e in events] == [e["seq"] for e in final["events"] if e["seq"] > after]
    assert events[-1]["type"] == "SUCCEEDED"

    # A client that resumes after (or past) the terminal event gets an empty, completed stream.
    terminal = final["events"][-1]["seq"]
    async with ws_connect(base, key) as ws:
        for resume in (terminal, terminal + 5):
            assert await asyncio.wait_for(_collect(ws, job["id"], after=resume), 10) == []


async def test_progress_is_coalesced_before_it_is_written(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker(PROGRESS_INTERVAL_SECONDS="0.1")
    client = GraphQLClient(base, env.create_key("alice"))
    # 10,000 progress reports as fast as the handler can make them.
    job = await submit(client, "demo.sleep", {"steps": 10_000, "stepSeconds": 0})
    await wait_for_status(client, job["id"], {"SUCCEEDED"}, timeout=60)
    await client.aclose()
    rows = await env.sql(
        "SELECT count(*) FILTER (WHERE type = 'PROGRESS') AS n, "
        "max(progress) FILTER (WHERE type = 'PROGRESS') AS last, "
        "extract(epoch FROM max(at) - min(at)) AS span FROM job_events WHERE job_id = $1::uuid",
        job["id"],
    )
    n, last, span = rows[0]["n"], rows[0]["last"], float(rows[0]["span"])
    # At most one write per interval while it ran (plus the final flush), and the last kept.
    assert 1 <= n <= span / 0.1 + 3, (n, span)
    assert n < 10_000
    assert last == 1.0
    job_row = await env.sql("SELECT progress FROM jobs WHERE id = $1::uuid", job["id"])
    assert job_row[0]["progress"] == 1.0


async def test_cpu_bound_work_does_not_stall_other_jobs(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker(WORKER_PROCESSES="1")
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    # The sleeper runs first; then sieves queued on one pool process keep it busy for a while
    # even on a fast machine (one 50M sieve alone can take well under a second).
    sleeper = await submit(client, "demo.sleep", {"steps": 1000, "stepSeconds": 0.01})
    await wait_for_status(client, sleeper["id"], {"RUNNING"})
    primes = [await submit(client, "compute.primes", {"limit": 50_000_000}) for _ in range(12)]
    done = [await wait_for_status(client, p["id"], {"SUCCEEDED"}, timeout=180) for p in primes]
    assert {d["result"]["primes"] for d in done} == {3_001_134}
    sleeper_done = await wait_for_status(client, sleeper["id"], {"SUCCEEDED"}, timeout=120)
    await client.aclose()

    def at(job: dict, kind: str) -> datetime:
        return datetime.fromisoformat(next(e["at"] for e in job["events"] if e["type"] == kind))

    # The window in which the pool was busy with sieves and the sleeper was running.
    opened = max(at(sleeper_done, "STARTED"), min(at(d, "STARTED") for d in done))
    closed = max(at(d, "SUCCEEDED") for d in done)
    during = [
        e
        for e in sleeper_done["events"]
        if e["type"] == "PROGRESS" and opened < datetime.fromisoformat(e["at"]) < closed
    ]
    # The same worker kept running demo.sleep and publishing its progress (about ten writes
    # a second) while the sieves ran: its steps of 10 ms kept advancing at a good fraction of
    # their pace (a sieve on the event loop would freeze them for its whole run).
    assert len(during) >= 5, (len(during), opened, closed)
    span = datetime.fromisoformat(during[-1]["at"]) - datetime.fromisoformat(during[0]["at"])
    steps = round((during[-1]["progress"] - during[0]["progress"]) * 1000)
    assert steps >= 0.2 * span.total_seconds() / 0.01, (steps, span)


async def test_websocket_requires_a_valid_key(stack: support.Stack, env: support.Env) -> None:
    import json

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    _, base = stack.serve()
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403


async def test_another_principal_cannot_follow_a_job(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    alice, bob = env.create_key("alice"), env.create_key("bob")
    client = GraphQLClient(base, alice)
    job = await submit(client, "demo.sleep", {})
    await client.aclose()
    async with ws_connect(base, bob) as ws:
        messages = [m async for m in ws.subscribe(JOB_EVENTS, {"id": job["id"]})]
    assert len(messages) == 1
    errors = messages[0].get("errors") or []
    assert errors
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
