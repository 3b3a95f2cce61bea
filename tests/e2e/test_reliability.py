"""Retries, timeouts, dead letter, cancellation, priority and graceful shutdown, with real
worker processes."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx

from tests import support
from tests.support import JOB, GraphQLClient, submit, wait_for_status

FAST = {"LEASE_SECONDS": "3", "MAINTENANCE_INTERVAL_SECONDS": "0.2", "RECLAIM_IDLE_SECONDS": "3"}
CANCEL = """mutation($id: ID!) { cancelJob(id: $id) {
  __typename ... on Job { status } ... on UserError { code } } }"""
RETRY = "mutation($id: ID!) { retryJob(id: $id) { __typename ... on Job { status maxAttempts } } }"


async def test_retries_with_backoff_until_success_then_dead_letter_and_manual_retry(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    metrics_port = support.free_port()
    stack.worker(process=True, **FAST, METRICS_PORT=str(metrics_port))
    client = GraphQLClient(base, env.create_key("alice"))
    ok = await submit(client, "demo.flaky", {"failTimes": 2}, maxAttempts=3)
    dead = await submit(client, "demo.flaky", {"failTimes": 5}, maxAttempts=3)

    job = await wait_for_status(client, ok["id"], {"SUCCEEDED", "FAILED"})
    assert job["status"] == "SUCCEEDED"
    assert [(a["number"], a["status"]) for a in job["attempts"]] == [
        (1, "FAILED"),
        (2, "FAILED"),
        (3, "SUCCEEDED"),
    ]
    assert job["attempts"][0]["error"]["type"] == "FlakyError"
    scheduled = [e for e in job["events"] if e["type"] == "RETRY_SCHEDULED"]
    assert len(scheduled) == 2
    for event, failed, next_attempt in zip(
        scheduled, job["attempts"], job["attempts"][1:], strict=False
    ):
        delay = event["data"]["delaySeconds"]
        assert 0 <= delay <= 2.0  # demo.flaky: base 0.2 s, cap 2 s, full jitter
        assert next_attempt["startedAt"] >= failed["finishedAt"]

    job = await wait_for_status(client, dead["id"], {"FAILED"})
    assert [a["status"] for a in job["attempts"]] == ["FAILED"] * 3
    assert job["error"]["type"] == "FlakyError"
    assert "traceback" not in str(job["error"])
    dead_letter = (await client("{ jobs(filter: {status: FAILED}) { edges { node { id } } } }"))[
        "jobs"
    ]
    assert [e["node"]["id"] for e in dead_letter["edges"]] == [dead["id"]]

    retried = (await client(RETRY, {"id": dead["id"]}))["retryJob"]
    assert retried == {"__typename": "Job", "status": "QUEUED", "maxAttempts": 6}
    job = await wait_for_status(client, dead["id"], {"SUCCEEDED", "FAILED"})
    assert job["status"] == "SUCCEEDED"
    assert job["attempt"] == 6
    assert "RETRIED" in [e["type"] for e in job["events"]]
    again = (await client(RETRY, {"id": dead["id"]}))["retryJob"]
    assert again["__typename"] == "InvalidState"
    await client.aclose()

    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert 'conveyor_retries_total{kind="demo.flaky"} 6.0' in scraped
    assert 'conveyor_dead_lettered_total{kind="demo.flaky"} 1.0' in scraped
    assert (
        'conveyor_attempt_duration_seconds_count{kind="demo.flaky",outcome="SUCCEEDED"} 2.0'
        in scraped
    )


async def test_an_attempt_over_its_deadline_times_out_and_the_job_fails(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker(**FAST)
    client = GraphQLClient(base, env.create_key("alice"))
    job = await submit(
        client, "demo.sleep", {"steps": 10, "stepSeconds": 0.2}, timeoutSeconds=0.5, maxAttempts=2
    )
    done = await wait_for_status(client, job["id"], {"FAILED"})
    assert [a["status"] for a in done["attempts"]] == ["TIMED_OUT", "TIMED_OUT"]
    assert done["error"]["type"] == "Timeout"
    assert [e["type"] for e in done["events"] if e["type"] in ("TIMED_OUT", "FAILED")] == [
        "TIMED_OUT",
        "FAILED",
    ]
    await client.aclose()


async def test_cancel_a_running_job_within_seconds(stack: support.Stack, env: support.Env) -> None:
    _, base = stack.serve()
    stack.worker(**FAST)
    client = GraphQLClient(base, env.create_key("alice"))
    job = await submit(client, "demo.sleep", {"steps": 60, "stepSeconds": 1})
    await wait_for_status(client, job["id"], {"RUNNING"})
    assert (await client(CANCEL, {"id": job["id"]}))["cancelJob"]["status"] == "RUNNING"
    # Stopped by its worker mid-run (the handler would run for 60 s), not left to finish.
    done = await wait_for_status(client, job["id"], {"CANCELLED"}, timeout=30)
    assert [a["status"] for a in done["attempts"]] == ["CANCELLED"]
    types = [e["type"] for e in done["events"]]
    assert types.index("CANCEL_REQUESTED") < types.index("CANCELLED")
    finished = (await client(CANCEL, {"id": job["id"]}))["cancelJob"]
    assert finished == {"__typename": "InvalidState", "code": "INVALID_STATE"}
    await client.aclose()


async def test_high_priority_jobs_start_before_low_ones(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    client = GraphQLClient(base, env.create_key("alice"))
    low = [
        await submit(client, "demo.sleep", {"steps": 1, "stepSeconds": 0.05}, priority="LOW")
        for _ in range(4)
    ]
    high = [
        await submit(client, "demo.sleep", {"steps": 1, "stepSeconds": 0.05}, priority="HIGH")
        for _ in range(4)
    ]
    stack.worker("worker", "--concurrency", "1", **FAST)
    started = {}
    for job in low + high:
        done = await wait_for_status(client, job["id"], {"SUCCEEDED"})
        started[job["id"]] = done["attempts"][0]["startedAt"]
    assert max(started[j["id"]] for j in high) < min(started[j["id"]] for j in low)
    await client.aclose()


async def test_sigterm_lets_short_jobs_finish_and_releases_long_ones(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    first = stack.worker("w1", **FAST, SHUTDOWN_GRACE_SECONDS="1.5")
    client = GraphQLClient(base, env.create_key("alice"))
    short = await submit(client, "demo.sleep", {"steps": 2, "stepSeconds": 0.3})
    long = await submit(client, "demo.sleep", {"steps": 30, "stepSeconds": 0.2}, maxAttempts=1)
    await wait_for_status(client, short["id"], {"RUNNING"})
    await wait_for_status(client, long["id"], {"RUNNING"})
    assert await asyncio.to_thread(first.terminate, 30) == 0
    assert (await client(JOB, {"id": short["id"]}))["job"]["status"] == "SUCCEEDED"
    released = (await client(JOB, {"id": long["id"]}))["job"]
    assert released["status"] == "QUEUED"
    assert released["attempts"][0]["status"] == "LOST"
    assert released["attempts"][0]["error"]["type"] == "WorkerShutdown"
    # A released attempt does not count: its one attempt is still to come, within maxAttempts.
    assert (released["attempt"], released["maxAttempts"]) == (1, 2)
    workers = (await client("{ workers { id } }"))["workers"]
    assert workers == []
    stack.worker("w2", **FAST)
    done = await wait_for_status(client, long["id"], {"SUCCEEDED"})
    assert [a["status"] for a in done["attempts"]] == ["LOST", "SUCCEEDED"]
    assert done["attempt"] <= done["maxAttempts"]
    assert (
        len(
            (await client("{ workers { id host pid queues runningJobs lastHeartbeatAt } }"))[
                "workers"
            ]
        )
        == 1
    )
    await client.aclose()


async def test_finished_jobs_are_pruned_in_batches_and_acknowledged_messages_leave_the_stream(
    stack: support.Stack, env: support.Env
) -> None:
    from redis.asyncio import Redis

    from conveyor.services.dispatch import stream_key

    _, base = stack.serve()
    runner = stack.worker("runner", **FAST, RETENTION_DAYS="0")  # never prunes
    client = GraphQLClient(base, env.create_key("alice"))
    done = [await submit(client, "demo.noop", {}) for _ in range(5)]
    for job in done:
        await wait_for_status(client, job["id"], {"SUCCEEDED"})
    redis = Redis.from_url(support.REDIS_URL)
    try:
        assert await redis.xlen(stream_key(env.prefix, "default", 1)) == 0
    finally:
        await redis.aclose()
    waiting = await submit(client, "demo.sleep", {}, runAt="2100-01-01T00:00:00+00:00")
    assert await asyncio.to_thread(runner.terminate, 30) == 0
    deadline = time.monotonic() + 30
    old = "SELECT count(*) AS n FROM jobs WHERE finished_at < now() - interval '2 seconds'"
    while (await env.sql(old))[0]["n"] < 5:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    # Retention of 2 s, 2 jobs per batch, and one pass (at start-up) per hour: the five old
    # jobs are all pruned by that one pass.
    pruner = stack.worker(
        "pruner",
        **FAST,
        RETENTION_DAYS=str(2 / 86400),
        PRUNE_BATCH_SIZE="2",
        PRUNE_INTERVAL_SECONDS="3600",
    )
    while (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] > 1:
        assert time.monotonic() < deadline, "finished jobs were not pruned"
        await asyncio.sleep(0.2)
    left = await env.sql("SELECT id::text AS id FROM jobs")
    assert [r["id"] for r in left] == [waiting["id"]]
    assert (
        await env.sql(
            "SELECT count(*) AS n FROM job_events WHERE job_id <> $1::uuid", waiting["id"]
        )
    )[0]["n"] == 0
    passes = [
        json.loads(line)
        for line in pruner.output().splitlines()
        if '"pruned finished jobs"' in line
    ]
    assert [(p["jobs"], p["batches"]) for p in passes] == [(5, 3)]
    await client.aclose()


async def test_a_failed_attempt_waits_visibly_in_retrying_until_next_run_at(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    client = GraphQLClient(base, env.create_key("alice"))
    # demo.flaky's own backoff (0.2 s base) is too short to watch: this job asks for an hour,
    # so the wait is seen whatever the jitter draws.
    job = await submit(
        client,
        "demo.flaky",
        {"failTimes": 1},
        maxAttempts=2,
        backoffBaseSeconds=3600,
        backoffCapSeconds=3600,
    )
    stack.worker(**FAST)
    retrying = await wait_for_status(client, job["id"], {"RETRYING"})
    next_run_at = await _next_run_at(client, job["id"])
    assert next_run_at > datetime.now(UTC)
    assert [(a["number"], a["status"]) for a in retrying["attempts"]] == [(1, "FAILED")]
    assert retrying["events"][-1]["type"] == "RETRY_SCHEDULED"
    await asyncio.sleep(1.5)  # several maintenance sweeps: it stays put until nextRunAt
    still = (await client(JOB, {"id": job["id"]}))["job"]
    assert (still["status"], len(still["attempts"])) == ("RETRYING", 1)
    # As if the hour had passed: the second attempt runs, and succeeds.
    await env.sql("UPDATE jobs SET next_run_at = now() WHERE id = $1::uuid", job["id"])
    done = await wait_for_status(client, job["id"], {"SUCCEEDED", "FAILED"})
    assert [a["status"] for a in done["attempts"]] == ["FAILED", "SUCCEEDED"]
    await client.aclose()


async def _next_run_at(client: GraphQLClient, job_id: str) -> datetime:
    query = "query($id: ID!) { job(id: $id) { nextRunAt } }"
    return datetime.fromisoformat((await client(query, {"id": job_id}))["job"]["nextRunAt"])


async def test_a_permanent_error_fails_the_job_at_once(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    stack.worker(**FAST)
    client = GraphQLClient(base, env.create_key("alice"))
    job = await submit(client, "demo.flaky", {"failTimes": 5, "permanent": True}, maxAttempts=3)
    done = await wait_for_status(client, job["id"], {"FAILED", "SUCCEEDED"})
    assert done["status"] == "FAILED"
    assert [a["status"] for a in done["attempts"]] == ["FAILED"]
    assert done["error"]["type"] == "PermanentError"
    assert "RETRY_SCHEDULED" not in [e["type"] for e in done["events"]]
    await client.aclose()
