"""The remote client (`conveyor.client`) against a running API and worker: typed submit, get
and cancel; `follow` across a connection cut by the network, without a missed or repeated
event; no retry after 4403. Beside it, a stock graphql-ws client follows the same job through
the same cut: what it lost is written to test-artifacts/follow-resume.json (measured, not
asserted: that is graphql-ws's behaviour, KNOWN-TRAPS)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor import Client, InvalidInput, InvalidState, NotFound, Unauthenticated
from conveyor.client import JobEvent, RunEvent
from conveyor.domain.runs import RunEventType, RunStatus
from conveyor.domain.states import EventType, JobStatus
from tests import support
from tests.conditions import until
from tests.proxy import Proxy

ARTIFACT = support.ROOT / "test-artifacts" / "follow-resume.json"


@pytest.fixture
async def proxied(stack: support.Stack) -> AsyncIterator[Proxy]:
    """The API and a worker, in front of the API a proxy the test can cut."""
    _, base = stack.serve()
    stack.worker()
    proxy = await Proxy(int(base.rsplit(":", 1)[1])).start()
    yield proxy
    await proxy.stop()


async def test_submit_get_and_cancel_are_typed(proxied: Proxy, env: support.Env) -> None:
    async with Client(proxied.url, key=env.create_key("alice")) as client:
        with pytest.raises(InvalidInput) as invalid:
            await client.submit("demo.sleep", {"steps": 0})
        assert [f.path for f in invalid.value.field_errors] == [("payload", "steps")]
        later = datetime.now(UTC) + timedelta(hours=1)
        job = await client.submit("demo.sleep", {"steps": 2}, run_at=later, idempotency_key="c-1")
        assert (job.kind, job.status, job.payload) == (
            "demo.sleep",
            JobStatus.SCHEDULED,
            {"steps": 2, "stepSeconds": 0.5},
        )
        again = await client.submit("demo.sleep", {"steps": 2}, run_at=later, idempotency_key="c-1")
        assert (again.id, again.deduplicated) == (job.id, True)
        found = await client.get(job.id)
        assert found is not None
        assert found.run_at == later
        cancelled = await client.cancel(job.id)
        assert cancelled.status is JobStatus.CANCELLED
        with pytest.raises(InvalidState):
            await client.cancel(job.id)
        assert await client.get(uuid.UUID(int=0)) is None
        with pytest.raises(NotFound):
            await client.cancel(uuid.UUID(int=0))


async def test_follow_resumes_after_a_cut_without_missing_or_repeating(
    proxied: Proxy, stack: support.Stack, env: support.Env
) -> None:
    key = env.create_key("alice")
    async with Client(proxied.url, key=key) as client:
        job = await client.submit("demo.sleep", {"steps": 40, "stepSeconds": 0.05})
        stock = await asyncio.create_subprocess_exec(
            "node",
            str(support.ROOT / "tests" / "graphql_ws_follow.cjs"),
            str(support.ROOT / "frontend"),
            proxied.url.replace("http://", "ws://") + "/graphql",
            key,
            str(job.id),
            stdout=asyncio.subprocess.PIPE,
        )
        assert stock.stdout is not None
        stock_lines: list[dict[str, Any]] = []
        received: list[JobEvent] = []

        async def read_stock() -> None:
            assert stock.stdout is not None
            async for line in stock.stdout:
                stock_lines.append(json.loads(line))

        async def consume() -> None:
            async for event in client.follow(job.id):
                received.append(event)

        reading = asyncio.create_task(read_stock())
        following = asyncio.create_task(consume())

        async def both_streaming() -> bool:
            theirs = sum(1 for line in stock_lines if line["on"] == "next")
            return len(received) >= 4 and theirs >= 2 and not received[-1].is_terminal

        await until(both_streaming, "both clients to have a snapshot and events")
        proxied.cut(hold=True)
        cut_after = received[-1].seq

        async def moved_on() -> bool:
            rows = await env.sql("SELECT last_seq FROM jobs WHERE id = $1", job.id)
            return rows[0]["last_seq"] >= cut_after + 5

        await until(moved_on, "five events while nobody can connect")
        proxied.resume()
        await asyncio.wait_for(following, 60)
        await asyncio.wait_for(reading, 60)
        await stock.wait()

    stored = [
        r["seq"]
        for r in await env.sql("SELECT seq FROM job_events WHERE job_id = $1 ORDER BY seq", job.id)
    ]
    snapshot, events = received[0], received[1:]
    assert snapshot.type is EventType.SNAPSHOT
    assert [e.seq for e in events] == [s for s in stored if s > snapshot.seq]
    assert events[-1].type is EventType.SUCCEEDED
    assert client.reconnects >= 1
    assert proxied.connections >= 4  # each client connected twice

    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(_compare(stored, received, stock_lines), indent=2) + "\n")


def _compare(
    stored: list[int], ours: list[JobEvent], stock: list[dict[str, Any]]
) -> dict[str, Any]:
    """What each client saw of the stored events after its first snapshot."""
    seen = [(line["seq"], line["type"]) for line in stock if line["on"] == "next"]
    first = seen[0][0] if seen else 0
    delivered = [seq for seq, kind in seen if kind != "SNAPSHOT"]
    expected = [s for s in stored if s > first]
    ours_delivered = [e.seq for e in ours[1:]]
    return {
        "stored_events": len(stored),
        "conveyor_client": {
            "delivered": len(ours_delivered),
            "missed": len({s for s in stored if s > ours[0].seq} - set(ours_delivered)),
            "repeated": len(ours_delivered) - len(set(ours_delivered)),
        },
        "graphql_ws_stock": {
            "delivered": len(delivered),
            "missed": len(set(expected) - set(delivered)),
            "repeated": len(delivered) - len(set(delivered)),
            "snapshots": sum(1 for _, kind in seen if kind == "SNAPSHOT"),
            "got_the_terminal_event": any(kind == "SUCCEEDED" for _, kind in seen),
            "connections": sum(1 for line in stock if line["on"] == "connected"),
            "ended": stock[-1]["on"] if stock else "nothing",
        },
    }


async def test_follow_stops_at_4403_instead_of_retrying(proxied: Proxy, env: support.Env) -> None:
    async with Client(proxied.url, key="cvk_not_a_key") as client:
        with pytest.raises(Unauthenticated):
            async for _ in client.follow("00000000-0000-0000-0000-000000000000"):
                pass
        assert (client.reconnects, proxied.connections) == (0, 1)


async def test_follow_run_resumes_after_a_cut_without_missing_or_repeating(
    proxied: Proxy, env: support.Env
) -> None:
    async with Client(proxied.url, key=env.create_key("alice")) as client:
        submitted = await client.execute(
            """mutation($i: SubmitWorkflowInput!) { submitWorkflow(input: $i) {
                __typename ... on WorkflowRun { id } } }""",
            {"i": {"workflow": "demo.pipeline", "input": {"items": 6, "stepSeconds": 0.3}}},
        )
        run_id = uuid.UUID(submitted["submitWorkflow"]["id"])
        received: list[RunEvent] = []

        async def consume() -> None:
            async for event in client.follow_run(run_id):
                received.append(event)

        following = asyncio.create_task(consume())
        await until(lambda: _some(received, 2), "the snapshot and a first event")
        proxied.cut(hold=True)
        cut_after = received[-1].seq

        async def moved_on() -> bool:
            rows = await env.sql(
                "SELECT max(seq) AS seq FROM workflow_events WHERE run_id = $1", run_id
            )
            return (rows[0]["seq"] or 0) >= cut_after + 2

        await until(moved_on, "two run events while nobody can connect")
        proxied.resume()
        await asyncio.wait_for(following, 60)
    stored = [
        r["seq"]
        for r in await env.sql(
            "SELECT seq FROM workflow_events WHERE run_id = $1 ORDER BY seq", run_id
        )
    ]
    snapshot, events = received[0], received[1:]
    assert snapshot.type is RunEventType.SNAPSHOT
    assert [e.seq for e in events] == [s for s in stored if s > snapshot.seq]
    assert events[-1].type is RunEventType.SUCCEEDED
    assert events[-1].status is RunStatus.SUCCEEDED
    assert client.reconnects >= 1


async def _some(received: list[RunEvent], n: int) -> bool:
    return len(received) >= n and not received[-1].is_terminal
