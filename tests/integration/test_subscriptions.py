"""`jobEvents` and `jobUpdates` at the schema level (strawberry's `schema.subscribe`), as the
anchors test subscriptions: no socket, the real hub on real Redis, jobs run by the in-process
runner (`conveyor.testing.Harness`). The WebSocket protocol has its own e2e tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from conveyor import kinds, pubsub
from conveyor.api.context import Context
from conveyor.api.schema import create_schema
from conveyor.domain.errors import UserError
from conveyor.domain.models import Job, Principal
from conveyor.services import auth, submit
from conveyor.services.deps import Deps, open_deps
from conveyor.settings import Settings
from conveyor.testing import Harness

EVENTS = """subscription($id: ID!, $after: Int) {
  jobEvents(jobId: $id, after: $after) { seq type status progress } }"""
UPDATES = """subscription($filter: JobFilter) {
  jobUpdates(filter: $filter) { jobId seq type kind status } }"""


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with open_deps(settings, kinds.load(settings.jobs), pool_size=4) as d:
        yield d


@pytest.fixture
async def hub(deps: Deps) -> AsyncIterator[pubsub.Hub]:
    h = pubsub.Hub(deps.redis, deps.prefix)
    await h.start()
    yield h
    await h.stop()


@pytest.fixture
async def alice(deps: Deps) -> Principal:
    key, _ = await auth.create_api_key(
        deps.engine, name="alice", secret_key=deps.settings.secret_key.get_secret_value()
    )
    return key.principal()


@pytest.fixture
def harness(deps: Deps) -> Iterator[Harness]:
    h = Harness(deps)
    yield h
    h.close()


def _context(deps: Deps, hub: pubsub.Hub, principal: Principal) -> Context:
    authenticator = auth.Authenticator(
        deps.engine, cache_seconds=0, secret_key=deps.settings.secret_key.get_secret_value()
    )
    return Context(deps=deps, hub=hub, authenticator=authenticator, _principal=principal)


async def _submit(deps: Deps, who: Principal, kind: str, payload: dict[str, Any]) -> Job:
    [job] = await submit.submit_many(deps, who, [submit.SubmitRequest(kind, payload)])
    assert not isinstance(job, UserError), job
    return job


async def _collect(stream: Any, until: str) -> list[dict[str, Any]]:
    """Results until one whose `type` is `until` (inclusive), or the stream completes."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        async for result in stream:
            assert result.errors is None, result.errors
            (item,) = result.data.values()
            out.append(item)
            if item["type"] == until:
                break
    return out


async def test_job_events_start_with_a_snapshot_then_every_event_in_seq_order(
    deps: Deps, hub: pubsub.Hub, alice: Principal, harness: Harness
) -> None:
    schema = create_schema(deps.settings)
    job = await _submit(deps, alice, "demo.sleep", {"steps": 3, "stepSeconds": 0})
    stream = await schema.subscribe(
        EVENTS, variable_values={"id": str(job.id)}, context_value=_context(deps, hub, alice)
    )
    first = await anext(stream)  # type: ignore[arg-type]
    assert first.data["jobEvents"] == {
        "seq": 1,
        "type": "SNAPSHOT",
        "status": "QUEUED",
        "progress": 0.0,
    }
    runner = asyncio.create_task(harness.run(job.id))
    rest = await _collect(stream, "SUCCEEDED")
    await runner
    assert [e["seq"] for e in rest] == list(range(2, 2 + len(rest)))  # gapless, no repeat
    assert [rest[0]["type"], rest[-1]["type"]] == ["STARTED", "SUCCEEDED"]
    # The stream completes after the terminal event.
    with pytest.raises(StopAsyncIteration):
        await anext(stream)  # type: ignore[arg-type]


async def test_job_events_after_a_seq_replay_exactly_what_follows_it(
    deps: Deps, hub: pubsub.Hub, alice: Principal, harness: Harness
) -> None:
    schema = create_schema(deps.settings)
    job = await _submit(deps, alice, "demo.sleep", {"steps": 2, "stepSeconds": 0})
    await harness.run(job.id)
    stream = await schema.subscribe(
        EVENTS,
        variable_values={"id": str(job.id), "after": 2},
        context_value=_context(deps, hub, alice),
    )
    replayed = await _collect(stream, "SUCCEEDED")
    assert replayed[0]["seq"] == 3
    assert replayed[-1]["type"] == "SUCCEEDED"
    assert "SNAPSHOT" not in {e["type"] for e in replayed}


async def test_another_principal_cannot_follow_a_job(
    deps: Deps, hub: pubsub.Hub, alice: Principal
) -> None:
    bob, _ = await auth.create_api_key(
        deps.engine, name="bob", secret_key=deps.settings.secret_key.get_secret_value()
    )
    job = await _submit(deps, alice, "demo.noop", {})
    stream = await create_schema(deps.settings).subscribe(
        EVENTS,
        variable_values={"id": str(job.id)},
        context_value=_context(deps, hub, bob.principal()),
    )
    result = await anext(stream)  # type: ignore[arg-type]
    assert result.errors is not None
    assert result.errors[0].extensions["code"] == "NOT_FOUND"


async def test_job_updates_match_the_filter_against_the_status_after_each_change(
    deps: Deps, hub: pubsub.Hub, alice: Principal, harness: Harness
) -> None:
    schema = create_schema(deps.settings)
    stream = await schema.subscribe(
        UPDATES,
        variable_values={"filter": {"kind": ["demo.noop"], "status": ["RUNNING", "SUCCEEDED"]}},
        context_value=_context(deps, hub, alice),
    )
    first = asyncio.ensure_future(anext(stream))  # type: ignore[arg-type]
    async with asyncio.timeout(10):  # subscribed, and the hub listening, before anything happens
        while hub.subscriber_count == 0:  # noqa: ASYNC110 - the hub has no event for this
            await asyncio.sleep(0.01)
        await hub.listening()
    other = await _submit(deps, alice, "demo.sleep", {"steps": 1, "stepSeconds": 0})
    job = await _submit(deps, alice, "demo.noop", {})
    await harness.run(other.id)
    await harness.run(job.id)
    async with asyncio.timeout(20):
        seen = [(await first).data["jobUpdates"]]
        while seen[-1]["status"] != "SUCCEEDED":
            seen.append((await anext(stream)).data["jobUpdates"])  # type: ignore[arg-type]
    # Only demo.noop, only its RUNNING and SUCCEEDED changes (not SUBMITTED: QUEUED).
    assert {u["jobId"] for u in seen} == {str(job.id)}
    assert [(u["type"], u["status"]) for u in seen] == [
        ("STARTED", "RUNNING"),
        ("SUCCEEDED", "SUCCEEDED"),
    ]
    await stream.aclose()  # type: ignore[attr-defined]
