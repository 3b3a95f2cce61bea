"""Workers run only the kinds they know (ADR-0019), against real PostgreSQL and Redis: a claim
takes only known kinds and gives the others back, and the resend sweep sends a job only while a
live worker serves its queue and knows its kind."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from conveyor import kinds
from conveyor.domain.states import Priority
from conveyor.services import dispatch, execution
from conveyor.services.deps import Deps, open_deps
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api
from tests.support import submit

DEMO = ["conveyor.kinds.demo"]
COMPUTE = ["conveyor.kinds.compute"]


@pytest.fixture
async def demo_only(settings: Settings) -> AsyncIterator[Deps]:
    """What a worker whose job modules are the demo kinds alone holds (no compute.primes)."""
    async with open_deps(settings, kinds.load(DEMO), pool_size=2) as deps:
        yield deps


@pytest.fixture
async def compute_only(settings: Settings) -> AsyncIterator[Deps]:
    async with open_deps(settings, kinds.load(COMPUTE), pool_size=2) as deps:
        yield deps


async def _register(deps: Deps, name: str, queues: list[str]) -> str:
    worker_id = f"{name}-{uuid.uuid4().hex[:6]}"
    await execution.register_worker(
        deps,
        worker_id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=queues,
        concurrency=1,
    )
    return worker_id


async def _stream(deps: Deps, queue: str) -> list[str]:
    """Job ids in a queue's (normal priority) stream."""
    entries = await deps.redis.xrange(dispatch.stream_key(deps.prefix, queue, Priority.NORMAL))
    return [str(orjson.loads(fields[b"data"])["args"][0]) for _, fields in entries]


async def _job(env: support.Env, job_id: str) -> dict[str, object]:
    row = (
        await env.sql(
            "SELECT status, attempt, dispatched_at = '-infinity' AS left_, "
            "dispatched_at IS NULL AS unsent, "
            "(SELECT count(*) FROM job_attempts WHERE job_id = jobs.id) AS attempts "
            "FROM jobs WHERE id = $1",
            uuid.UUID(job_id),
        )
    )[0]
    return dict(row)


async def _until_marked(env: support.Env) -> None:
    """The API marks a job sent a moment after it sent it."""
    deadline = time.monotonic() + 10
    while (await env.sql("SELECT count(*) AS n FROM jobs WHERE dispatched_at IS NULL"))[0]["n"]:
        assert time.monotonic() < deadline, "the API never marked the job sent"
        await asyncio.sleep(0.02)


async def test_a_claim_takes_only_known_kinds_and_gives_the_others_back(
    api: Api, env: support.Env, demo_only: Deps
) -> None:
    client = api.client(await api.key("alice"))
    primes = await submit(client, "compute.primes", {"limit": 10})
    noop = await submit(client, "demo.noop", {})
    ids = [uuid.UUID(primes["id"]), uuid.UUID(noop["id"])]
    claimed = await execution.claim_many(demo_only, worker_id="demo-worker", job_ids=ids)
    assert claimed[0] is None
    assert claimed[1] is not None
    assert claimed[1].job.kind == "demo.noop"
    # Never failed, never dead-lettered, no attempt: QUEUED, marked for the resend sweep.
    assert await _job(env, primes["id"]) == {
        "status": "QUEUED",
        "attempt": 0,
        "left_": True,
        "unsent": False,
        "attempts": 0,
    }
    # The API's late "sent" mark (it only marks unmarked jobs) cannot hide it from the sweep.
    await dispatch.mark(
        demo_only.engine,
        demo_only.redis,
        env.prefix,
        await demo_only.redis.get(dispatch.epoch_key(env.prefix)),
        ids[:1],
    )
    assert (await _job(env, primes["id"]))["left_"] is True


async def test_the_sweep_resends_a_job_only_while_a_live_worker_knows_its_kind_and_queue(
    api: Api, env: support.Env, demo_only: Deps, compute_only: Deps
) -> None:
    client = api.client(await api.key("alice"))
    primes = await submit(client, "compute.primes", {"limit": 10})
    assert await execution.claim_many(
        demo_only, worker_id="demo-worker", job_ids=[uuid.UUID(primes["id"])]
    ) == [None]
    await demo_only.redis.delete(dispatch.stream_key(env.prefix, "cpu", Priority.NORMAL))

    async def sweep() -> list[str]:
        assert await execution.sweep(demo_only, redispatch_after=0, resend_all=False)
        return await _stream(demo_only, "cpu")

    assert await sweep() == []  # no live worker at all
    await _register(demo_only, "demo", ["default", "cpu"])
    assert await sweep() == []  # serves the queue, does not know the kind
    await _register(compute_only, "compute-elsewhere", ["other"])
    assert await sweep() == []  # knows the kind, does not serve its queue
    stopped = await _register(compute_only, "compute-stopped", ["cpu"])
    await env.sql("UPDATE workers SET stopped_at = now() WHERE id = $1", stopped)
    silent = await _register(compute_only, "compute-silent", ["cpu"])
    await env.sql(
        "UPDATE workers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1", silent
    )
    assert await sweep() == []  # knows both, but is not live
    assert (await _job(env, primes["id"]))["left_"] is True

    await _register(compute_only, "compute", ["cpu"])
    assert await sweep() == [primes["id"]]
    await demo_only.dispatcher.stop()  # flushes the "sent" mark: the job is sent, not left, now
    assert await _job(env, primes["id"]) == {
        "status": "QUEUED",
        "attempt": 0,
        "left_": False,
        "unsent": False,
        "attempts": 0,
    }
    assert await sweep() == [primes["id"]]  # sent once: the next sweep has nothing to send


async def test_a_never_sent_job_waits_for_a_worker_that_knows_its_kind(
    api: Api, env: support.Env, demo_only: Deps
) -> None:
    client = api.client(await api.key("alice"))
    primes = await submit(client, "compute.primes", {"limit": 10})
    await _until_marked(env)
    await env.sql("UPDATE jobs SET dispatched_at = NULL")  # as if the API's send failed
    await demo_only.redis.delete(dispatch.stream_key(env.prefix, "cpu", Priority.NORMAL))
    await _register(demo_only, "demo", ["default", "cpu"])
    assert await execution.sweep(demo_only, redispatch_after=0, resend_all=True)
    assert await _stream(demo_only, "cpu") == []
    # A worker of the release before migration 0005 records no kinds: it runs every kind.
    await env.sql(
        "INSERT INTO workers (id, host, pid, queues, concurrency) "
        "VALUES ('old-release', 'h', 1, '{cpu}', 1)"
    )
    assert await execution.sweep(demo_only, redispatch_after=0, resend_all=True)
    assert await _stream(demo_only, "cpu") == [primes["id"]]


async def test_a_worker_records_the_kinds_it_knows(env: support.Env, compute_only: Deps) -> None:
    worker_id = await _register(compute_only, "compute", ["cpu"])
    rows = await env.sql("SELECT queues, kinds FROM workers WHERE id = $1", worker_id)
    assert (rows[0]["queues"], rows[0]["kinds"]) == (["cpu"], ["compute.primes"])
