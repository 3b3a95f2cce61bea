"""Workflows through real servers: the API over HTTP and WebSocket, real workers (processes
where one is killed), real PostgreSQL and Redis (a private one where it is wiped)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests import support
from tests.servers import PrivateRedis
from tests.support import GraphQLClient

FAST = {
    "LEASE_SECONDS": "3",
    "MAINTENANCE_INTERVAL_SECONDS": "0.2",
    "RECLAIM_IDLE_SECONDS": "3",
    "REDISPATCH_AFTER_SECONDS": "2",
}
SUBMIT = """mutation($i: DemoPipelineWorkflowInput!, $o: WorkflowOptions) {
  submitWorkflowDemoPipeline(input: $i, options: $o) {
    __typename ... on WorkflowRun { id status deduplicated }
    ... on UserError { code message } } }"""
SUBMIT_ANY = """mutation($i: SubmitWorkflowInput!) {
  submitWorkflow(input: $i) {
    __typename ... on WorkflowRun { id status } ... on UserError { code message }
    ... on InvalidInput { fieldErrors { path message } } } }"""
RUN = """query($id: ID!) { workflowRun(id: $id) {
  id status progress generation
  steps { key status isMap expected succeeded failed counts { status count }
          job { id status attempt }
          jobs(first: 250) { id status attempt mapIndex attempts { status } } } } }"""
JOB = """query($id: ID!) { job(id: $id) { run { id status } step { key } } }"""
EVENTS = """subscription($id: ID!, $after: Int) {
  workflowEvents(runId: $id, after: $after) { seq type status step stepStatus data } }"""
CANCEL = """mutation($id: ID!) { cancelWorkflowRun(id: $id) {
  __typename ... on WorkflowRun { status } ... on UserError { code } } }"""
RETRY = """mutation($id: ID!) { retryWorkflowRun(id: $id) {
  __typename ... on WorkflowRun { status generation } ... on UserError { code message } } }"""


async def _submit(client: GraphQLClient, items: int, step_seconds: float, **opts: Any) -> str:
    data = await client(SUBMIT, {"i": {"items": items, "stepSeconds": step_seconds}, **opts})
    run = data["submitWorkflowDemoPipeline"]
    assert run["__typename"] == "WorkflowRun", run
    return str(run["id"])


async def _run(client: GraphQLClient, run_id: str) -> dict[str, Any]:
    return (await client(RUN, {"id": run_id}))["workflowRun"]  # type: ignore[no-any-return]


async def _wait(
    client: GraphQLClient, run_id: str, done: Any, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = await _run(client, run_id)
        if done(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run not done after {timeout}s: {run['status']}")
        await asyncio.sleep(0.2)


def _ended(run: dict[str, Any]) -> bool:
    return run["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")


def _all_jobs(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [j for s in run["steps"] for j in s["jobs"]]


def _assert_every_step_once(run: dict[str, Any], items: int) -> None:
    jobs = _all_jobs(run)
    assert len(jobs) == items + 2
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}
    for j in jobs:
        assert [a["status"] for a in j["attempts"]].count("SUCCEEDED") == 1
    assert sorted(j["mapIndex"] for j in jobs if j["mapIndex"] is not None) == list(range(items))


async def test_the_demo_pipeline_of_200_items_completes_each_step_once_live(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker("w", "--concurrency", "32")
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    run_id = await _submit(client, 200, 0.0)
    async with support.ws_connect(base, env.create_key("bob", admin=True)) as ws:
        events = [m["data"]["workflowEvents"] async for m in ws.subscribe(EVENTS, {"id": run_id})]
    assert events[0]["type"] == "SNAPSHOT"
    seqs = [e["seq"] for e in events[1:]]
    assert seqs == list(range(events[0]["seq"] + 1, events[0]["seq"] + 1 + len(seqs)))
    assert events[-1]["type"] == "SUCCEEDED"
    run = await _run(client, run_id)
    assert run["status"] == "SUCCEEDED"
    assert run["progress"] == 1.0
    _assert_every_step_once(run, 200)
    work = next(s for s in run["steps"] if s["key"] == "work")
    assert work["counts"] == [{"status": "SUCCEEDED", "count": 200}]
    join = next(s for s in run["steps"] if s["key"] == "join")
    assert join["job"]["status"] == "SUCCEEDED"
    linked = (await client(JOB, {"id": join["job"]["id"]}))["job"]
    assert linked == {"run": {"id": run_id, "status": "SUCCEEDED"}, "step": {"key": "join"}}
    await client.aclose()


async def test_a_client_that_resumes_with_after_sees_every_event_once(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    run_id = await _submit(client, 30, 0.05)
    key = env.create_key("bob", admin=True)
    seen: list[dict[str, Any]] = []
    async with support.ws_connect(base, key) as ws:
        async for m in ws.subscribe(EVENTS, {"id": run_id, "after": 0}):
            seen.append(m["data"]["workflowEvents"])
            break  # disconnect after the first event, before any worker ran
    stack.worker("w", "--concurrency", "8")
    # Resume from the last seq held, several times while the run goes on.
    while not seen or seen[-1]["type"] not in ("SUCCEEDED", "FAILED", "CANCELLED"):
        async with support.ws_connect(base, key) as ws:
            async for m in ws.subscribe(EVENTS, {"id": run_id, "after": seen[-1]["seq"]}):
                seen.append(m["data"]["workflowEvents"])
                if len(seen) % 7 == 0:
                    break
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1]["type"] == "SUCCEEDED"
    await client.aclose()


@pytest.mark.chaos
async def test_a_worker_sigkilled_mid_map_loses_nothing_and_duplicates_no_success(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    victim = stack.worker("w1", "--concurrency", "16", process=True, **FAST)
    stack.worker("w2", "--concurrency", "16", process=True, **FAST)
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    run_id = await _submit(client, 200, 0.4)

    def some_done(run: dict[str, Any]) -> bool:
        work = next(s for s in run["steps"] if s["key"] == "work")
        return bool(work["succeeded"] >= 20)

    await _wait(client, run_id, some_done)
    victim.kill()
    run = await _wait(client, run_id, _ended)
    assert run["status"] == "SUCCEEDED"
    _assert_every_step_once(run, 200)
    lost = [a for j in _all_jobs(run) for a in j["attempts"] if a["status"] == "LOST"]
    assert lost, "the killed worker was running items"
    await client.aclose()


@pytest.mark.chaos
async def test_redis_wiped_mid_run_loses_nothing(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    from redis.asyncio import Redis

    _, base = stack.serve(REDIS_URL=private_redis.url)
    stack.worker("w", "--concurrency", "8", REDIS_URL=private_redis.url, **FAST)
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    run_id = await _submit(client, 60, 0.1)

    def started(run: dict[str, Any]) -> bool:
        return any(s["key"] == "work" and s["succeeded"] > 0 for s in run["steps"])

    await _wait(client, run_id, started)
    redis = Redis.from_url(private_redis.url)
    await redis.flushall()
    await redis.aclose()
    run = await _wait(client, run_id, _ended)
    assert run["status"] == "SUCCEEDED"
    _assert_every_step_once(run, 60)
    await client.aclose()


async def test_cancel_stops_every_step_within_seconds(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker("w", "--concurrency", "8")
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    run_id = await _submit(client, 100, 5.0)

    def running(run: dict[str, Any]) -> bool:
        return any(j["status"] == "RUNNING" for j in _all_jobs(run))

    await _wait(client, run_id, running)
    answer = (await client(CANCEL, {"id": run_id}))["cancelWorkflowRun"]
    assert answer == {"__typename": "WorkflowRun", "status": "CANCELLED"}

    def stopped(run: dict[str, Any]) -> bool:
        return all(j["status"] in ("CANCELLED", "SUCCEEDED") for j in _all_jobs(run))

    run = await _wait(client, run_id, stopped, timeout=10)
    assert {s["status"] for s in run["steps"] if s["key"] != "split"} == {"CANCELLED"}
    assert not [s for s in run["steps"] if s["key"] == "join" and s["job"] is not None]
    again = (await client(CANCEL, {"id": run_id}))["cancelWorkflowRun"]
    assert again == {"__typename": "InvalidState", "code": "INVALID_STATE"}
    await client.aclose()


async def test_retry_reruns_only_the_failed_steps(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve()
    stack.worker("w", "--concurrency", "8")
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    submitted = await client(
        SUBMIT_ANY,
        {"i": {"workflow": "demo.flaky_pipeline", "input": {"items": 6, "failItems": [1, 4]}}},
    )
    run_id = submitted["submitWorkflow"]["id"]
    failed = await _wait(client, run_id, _ended)
    assert failed["status"] == "FAILED"
    assert [s["status"] for s in failed["steps"]] == ["SUCCEEDED", "FAILED", "SKIPPED"]
    before = {(j["mapIndex"], j["id"]): j["attempt"] for j in _all_jobs(failed)}
    retried = (await client(RETRY, {"id": run_id}))["retryWorkflowRun"]
    assert retried == {"__typename": "WorkflowRun", "status": "RUNNING", "generation": 2}
    run = await _wait(client, run_id, _ended)
    assert run["status"] == "SUCCEEDED"
    after = {(j["mapIndex"], j["id"]): j["attempt"] for j in _all_jobs(run)}
    rerun = sorted(k[0] for k in before if after[k] != before[k])
    assert rerun == [1, 4]  # the failed items alone; split and the good items ran once
    new = [k for k in after if k not in before]
    assert len(new) == 1  # the join, skipped before: it runs for the first time
    assert len(after) == 6 + 2
    await client.aclose()


async def test_bad_input_is_refused_with_field_errors_and_stores_nothing(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    answer = (
        await client(SUBMIT_ANY, {"i": {"workflow": "demo.pipeline", "input": {"items": -1}}})
    )["submitWorkflow"]
    assert answer["__typename"] == "InvalidInput"
    assert answer["fieldErrors"][0]["path"] == ["input", "items"]
    unknown = (await client(SUBMIT_ANY, {"i": {"workflow": "no.such"}}))["submitWorkflow"]
    assert unknown["code"] == "UNKNOWN_WORKFLOW"
    rows = await env.sql("SELECT count(*) AS n FROM workflow_runs")
    assert rows[0]["n"] == 0
    first = await _submit(client, 1, 0, o={"idempotencyKey": "k"})
    again = (
        await client(SUBMIT, {"i": {"items": 1, "stepSeconds": 0}, "o": {"idempotencyKey": "k"}})
    )["submitWorkflowDemoPipeline"]
    assert again == {
        "__typename": "WorkflowRun",
        "id": first,
        "status": again["status"],
        "deduplicated": True,
    }
    await client.aclose()
