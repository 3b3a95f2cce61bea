"""Run-time limits, throttles, paused queues and every `Job.waitingReason` (ADR-0022), with
an in-process API and workers on real PostgreSQL and Redis. The kill -9 test of a per-key
limit across four worker processes is in tests/e2e/test_flow_control_e2e.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests import support

SET_LIMIT = """mutation($i: SetConcurrencyLimitInput!) { setConcurrencyLimit(input: $i) {
  __typename ... on ConcurrencyLimit { scope maxRunning rate source running waiting }
  ... on InvalidInput { fieldErrors { path message } } } }"""
SUBMIT_MANY = """mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on Job { id } } }"""
WAITING = """query($id: ID!) { job(id: $id) { id status waitingReason {
  code message until scope limit running holders ahead aheadExact details } } }"""
QUEUE = """mutation($q: String!) { %s(queue: $q) { __typename
  ... on QueuePause { queue paused changed } ... on UserError { code } } }"""
POLICY = """mutation($p: PolicyInput!) { setPolicy(input: $p) { __typename } }"""

Gql = Callable[[str, str], support.GraphQLClient]


@pytest.fixture
async def gql() -> AsyncIterator[Gql]:
    made: list[support.GraphQLClient] = []

    def client(base: str, key: str) -> support.GraphQLClient:
        made.append(support.GraphQLClient(base, key))
        return made[-1]

    yield client
    for c in made:
        await c.aclose()


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _submit(c: support.GraphQLClient, inputs: list[dict[str, Any]]) -> list[str]:
    results = (await c(SUBMIT_MANY, {"inputs": inputs}))["submitJobs"]
    assert all(r["__typename"] == "Job" for r in results), results
    return [r["id"] for r in results]


async def _reason(c: support.GraphQLClient, job_id: str) -> dict[str, Any] | None:
    return (await c(WAITING, {"id": job_id}))["job"]["waitingReason"]  # type: ignore[no-any-return]


async def _max_running_while(env: support.Env, ids: list[str], sql_filter: str = "") -> int:
    """Polls the jobs until all ended; the largest number RUNNING at one observation."""
    most = 0
    while True:
        rows = await env.sql(
            f"SELECT status FROM jobs WHERE id = ANY($1::uuid[]) {sql_filter}", ids
        )
        running = sum(r["status"] == "RUNNING" for r in rows)
        most = max(most, running)
        if all(r["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") for r in rows):
            return most
        await asyncio.sleep(0.02)


def _overlaps(rows: list[Any]) -> int:
    """The most attempts that ran at the same time, from their start and end."""
    edges = sorted(
        [(r["started_at"], 1) for r in rows] + [(r["finished_at"], -1) for r in rows],
        key=lambda e: (e[0], e[1]),
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def test_a_kind_limit_holds_jobs_queued_says_who_holds_it_and_changes_at_run_time(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    stack.worker("w1")
    stack.worker("w2")
    c = gql(base, env.create_key("ops", admin=True))
    made = (await c(SET_LIMIT, {"i": {"kind": "demo.sleep", "maxRunning": 1}}))[
        "setConcurrencyLimit"
    ]
    assert made == {
        "__typename": "ConcurrencyLimit",
        "scope": "kind:demo.sleep",
        "maxRunning": 1,
        "rate": None,
        "source": "api",
        "running": 0,
        "waiting": 0,
    }
    ids = await _submit(
        c, [{"kind": "demo.sleep", "payload": {"steps": 4, "stepSeconds": 0.3}}] * 4
    )

    async def one_running_one_parked() -> tuple[str, str] | None:
        rows = await env.sql(
            "SELECT j.id, j.status, p.scope FROM jobs j LEFT JOIN parked_jobs p "
            "ON p.job_id = j.id WHERE j.id = ANY($1::uuid[])",
            ids,
        )
        running = [str(r["id"]) for r in rows if r["status"] == "RUNNING"]
        parked = [str(r["id"]) for r in rows if r["scope"] == "kind:demo.sleep"]
        return (running[0], parked[0]) if len(running) == 1 and parked else None

    holder, waiting = await _until(one_running_one_parked)
    reason = await _reason(c, waiting)
    assert reason is not None
    assert reason["code"] == "CONCURRENCY_LIMIT"
    assert (reason["scope"], reason["limit"], reason["running"]) == ("kind:demo.sleep", 1, 1)
    assert reason["holders"] == [holder]
    assert "kind:demo.sleep" in reason["message"]
    # Two workers, one slot: never two at once, and every job ends SUCCEEDED.
    assert await _max_running_while(env, ids) <= 1
    await _until(lambda: _all_done(env, ids))
    attempts = await env.sql(
        "SELECT started_at, finished_at FROM job_attempts WHERE job_id = ANY($1::uuid[])", ids
    )
    assert _overlaps(list(attempts)) == 1
    # Raised at run time: the rest start together, without a restart.
    await c(SET_LIMIT, {"i": {"kind": "demo.sleep", "maxRunning": 10}})
    more = await _submit(
        c, [{"kind": "demo.sleep", "payload": {"steps": 10, "stepSeconds": 0.2}}] * 3
    )

    async def three_running() -> bool:
        rows = await env.sql(
            "SELECT count(*) AS n FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'RUNNING'",
            more,
        )
        return rows[0]["n"] == 3  # type: ignore[no-any-return]

    await _until(three_running)
    await _until(lambda: _all_done(env, more))


async def _all_done(env: support.Env, ids: list[str]) -> bool:
    rows = await env.sql("SELECT status FROM jobs WHERE id = ANY($1::uuid[])", ids)
    return all(r["status"] == "SUCCEEDED" for r in rows)


async def test_the_tenants_max_running_jobs_is_a_run_time_limit(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    """The issue's reproduction: maxRunningJobs 1, three jobs: they ran at once before."""
    _, base = stack.serve()
    stack.worker()
    c = gql(base, env.create_key("ops", admin=True))
    assert (await c(POLICY, {"p": {"maxRunningJobs": 1}}))["setPolicy"]["__typename"] == "Policy"
    ids = await _submit(
        c, [{"kind": "demo.sleep", "payload": {"steps": 2, "stepSeconds": 0.2}}] * 3
    )
    await _until(lambda: _all_done(env, ids))
    attempts = await env.sql(
        "SELECT started_at, finished_at FROM job_attempts WHERE job_id = ANY($1::uuid[])", ids
    )
    assert _overlaps(list(attempts)) == 1
    parked = await env.sql(
        "SELECT count(*) AS n FROM audit_log WHERE action = 'job.submit'"
    )  # never refused: all three were admitted
    assert parked[0]["n"] == 3


async def test_a_paused_queue_starts_nothing_and_accepts_submits(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    stack.worker()
    c = gql(base, env.create_key("ops", admin=True))
    paused = (await c(QUEUE % "pauseQueue", {"q": "default"}))["pauseQueue"]
    assert paused == {
        "__typename": "QueuePause",
        "queue": "default",
        "paused": True,
        "changed": True,
    }
    [job_id] = await _submit(c, [{"kind": "demo.noop", "payload": {}}])
    # The worker took the message and parked the job: it acknowledged it, and starts nothing.
    await _until(lambda: env.sql("SELECT 1 FROM parked_jobs WHERE job_id = $1::uuid", job_id))
    stream = f"{env.prefix}:q:default:normal"
    assert await _stream_len(stream) == 0
    reason = await _reason(c, job_id)
    assert reason is not None
    assert reason["code"] == "QUEUE_PAUSED"
    assert reason["details"]["pausedBy"] == "ops"
    queues = (await c("{ queues { queue paused pausedBy } }"))["queues"]
    assert {"queue": "default", "paused": True, "pausedBy": "ops"} in queues
    rows = await env.sql("SELECT status, attempt FROM jobs WHERE id = $1::uuid", job_id)
    assert (rows[0]["status"], rows[0]["attempt"]) == ("QUEUED", 0)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{base}/metrics")).text
    assert 'conveyor_jobs_waiting{reason="QUEUE_PAUSED"} 1.0' in metrics
    viewer = gql(base, env.create_key("submitter"))
    refused = await viewer.raw(QUEUE % "resumeQueue", {"q": "default"})
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    resumed = (await c(QUEUE % "resumeQueue", {"q": "default"}))["resumeQueue"]
    assert resumed["changed"] is True
    await support.wait_for_status(c, job_id, {"SUCCEEDED"})
    actions = await env.sql(
        "SELECT action, actor_name FROM audit_log WHERE action LIKE 'queue.%' ORDER BY id"
    )
    assert [tuple(a) for a in actions] == [("queue.pause", "ops"), ("queue.resume", "ops")]
    assert await _reason(c, job_id) is None


async def _stream_len(stream: str) -> int:
    from redis.asyncio import Redis

    redis = Redis.from_url(support.REDIS_URL)
    try:
        return int(await redis.xlen(stream))
    finally:
        await redis.aclose()


async def test_a_throttle_defers_jobs_to_their_slot(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    stack.worker()
    c = gql(base, env.create_key("ops", admin=True))
    made = (await c(SET_LIMIT, {"i": {"kind": "demo.noop", "rate": "1/h"}}))["setConcurrencyLimit"]
    assert (made["scope"], made["rate"], made["maxRunning"]) == ("kind:demo.noop", "1/h", None)
    first, second = await _submit(c, [{"kind": "demo.noop", "payload": {}}] * 2)
    await support.wait_for_status(c, first, {"SUCCEEDED"})
    await _until(lambda: env.sql("SELECT 1 FROM parked_jobs WHERE job_id = $1::uuid", second))
    reason = await _reason(c, second)
    assert reason is not None
    assert (reason["code"], reason["scope"]) == ("THROTTLED", "kind:demo.noop")
    assert reason["until"] is not None
    assert reason["details"]["rate"] == "1/h"
    # Deferred, not refused: the rate is lifted and it runs.
    await c(SET_LIMIT, {"i": {"kind": "demo.noop"}})
    await env.sql("UPDATE parked_jobs SET wake_at = now()")  # its slot comes (no waiting an hour)
    await support.wait_for_status(c, second, {"SUCCEEDED"})


async def test_every_other_waiting_reason_comes_from_the_real_state(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    stack.worker("w", "--queues", "default")
    c = gql(base, env.create_key("ops", admin=True))
    later = await support.submit(c, "demo.noop", {}, runAt="2999-01-01T00:00:00Z")
    reason = await _reason(c, later["id"])
    assert reason is not None
    assert (reason["code"], reason["until"]) == ("SCHEDULED", "2999-01-01T00:00:00+00:00")

    flaky = await support.submit(
        c, "demo.flaky", {"failTimes": 1}, backoffBaseSeconds=3600, backoffCapSeconds=3600
    )
    await support.wait_for_status(c, flaky["id"], {"RETRYING"})
    reason = await _reason(c, flaky["id"])
    assert reason is not None
    assert reason["code"] == "RETRY_BACKOFF"
    assert reason["until"] is not None

    # Nobody serves queue cpu.
    [primes] = await _submit(c, [{"kind": "compute.primes", "payload": {"limit": 10}}])
    reason = await _reason(c, primes)
    assert reason is not None
    assert reason["code"] == "NO_WORKER_FOR_QUEUE"
    assert "--queues cpu" in reason["message"]

    # A worker serves it but reports kinds (the `workers.kinds` column of the user-code work,
    # read defensively) without this one.
    await env.sql("ALTER TABLE workers ADD COLUMN IF NOT EXISTS kinds text[]")
    await env.sql(
        "INSERT INTO workers (id, host, pid, queues, concurrency, kinds) "
        "VALUES ('other', 'h', 1, ARRAY['cpu'], 4, ARRAY['other.kind'])"
    )
    reason = await _reason(c, primes)
    assert reason is not None
    assert reason["code"] == "NO_WORKER_FOR_KIND"
    # It knows the kind now but is busy elsewhere: the job waits its turn, two ahead of the
    # third.
    await env.sql("UPDATE workers SET kinds = ARRAY['compute.primes'] WHERE id = 'other'")
    more = await _submit(c, [{"kind": "compute.primes", "payload": {"limit": 10}}] * 2)
    reason = await _reason(c, more[1])
    assert reason is not None
    assert (reason["code"], reason["ahead"], reason["aheadExact"]) == ("QUEUED", 2, True)
    assert "2 jobs ahead" in reason["message"]
    first = await _reason(c, primes)
    assert first is not None
    assert (first["code"], first["ahead"]) == ("QUEUED", 0)
    # Running and finished jobs wait for nothing.
    noop = await support.submit(c, "demo.noop", {})
    await support.wait_for_status(c, noop["id"], {"SUCCEEDED"})
    assert await _reason(c, noop["id"]) is None


async def test_limits_are_validated_and_only_admins_set_them(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    c = gql(base, env.create_key("ops", admin=True))
    bad = (await c(SET_LIMIT, {"i": {"kind": "demo.sleep", "queue": "default", "rate": "lots"}}))[
        "setConcurrencyLimit"
    ]
    assert bad["__typename"] == "InvalidInput"
    bad = (await c(SET_LIMIT, {"i": {"kind": "demo.sleep", "rate": "ten/m", "maxRunning": 0}}))[
        "setConcurrencyLimit"
    ]
    assert sorted(f["path"][0] for f in bad["fieldErrors"]) == ["maxRunning", "rate"]
    ok = (await c(SET_LIMIT, {"i": {"perKeyOf": "demo.keyed", "maxRunning": 2}}))[
        "setConcurrencyLimit"
    ]
    assert (ok["scope"], ok["maxRunning"], ok["source"]) == ("key:demo.keyed", 2, "api")
    # Cleared: the kind's own per-key limit (key_concurrency=1, from code) applies again.
    back = (await c(SET_LIMIT, {"i": {"perKeyOf": "demo.keyed"}}))["setConcurrencyLimit"]
    assert (back["maxRunning"], back["source"]) == (1, "code")
    listed = (await c("{ concurrencyLimits { scope maxRunning source } }"))["concurrencyLimits"]
    assert {"scope": "key:demo.keyed", "maxRunning": 1, "source": "code"} in listed
    viewer = gql(base, env.create_key("submitter"))
    refused = await viewer.raw(SET_LIMIT, {"i": {"kind": "demo.sleep", "maxRunning": 1}})
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
