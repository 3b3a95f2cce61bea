"""Batch submit, bulk cancel/retry, scheduling, idempotency under concurrency, queue stats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests import support
from tests.integration.conftest import Api
from tests.support import JOB, submit

SUBMIT_MANY = """
mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) {
    __typename ... on Job { id status } ... on UserError { code }
  }
}
"""


async def test_submit_jobs_returns_a_result_per_item_and_stores_only_valid_ones(
    api: Api, env: support.Env
) -> None:
    client = api.client(await api.key("alice"))
    inputs = [
        {"kind": "demo.sleep", "payload": {"steps": 1}},
        {"kind": "demo.sleep", "payload": {"steps": -1}},
        {"kind": "nope.nope", "payload": {}},
        {"kind": "demo.noop", "payload": {}},
    ]
    results = (await client(SUBMIT_MANY, {"inputs": inputs}))["submitJobs"]
    assert [r["__typename"] for r in results] == ["Job", "InvalidInput", "UnknownJobKind", "Job"]
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 2
    too_many = await client.raw(SUBMIT_MANY, {"inputs": [inputs[0]] * 1001})
    assert too_many.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 2


async def test_twenty_concurrent_submits_with_one_key_create_one_job(
    api: Api, env: support.Env
) -> None:
    client = api.client(await api.key("alice"))
    results = await asyncio.gather(
        *(submit(client, "demo.sleep", {"steps": 2}, idempotencyKey="same") for _ in range(20))
    )
    assert len({r["id"] for r in results}) == 1
    assert sum(not r["deduplicated"] for r in results) == 1
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 1


async def test_run_at_schedules_and_cancel_of_a_scheduled_job_is_immediate(api: Api) -> None:
    client = api.client(await api.key("alice"))
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    job = await submit(client, "demo.sleep", {}, runAt=later)
    assert job["status"] == "SCHEDULED"
    detail = (
        await client("query($id: ID!) { job(id: $id) { runAt nextRunAt } }", {"id": job["id"]})
    )["job"]
    assert detail["runAt"] == detail["nextRunAt"]
    cancel = "mutation($id: ID!) { cancelJob(id: $id) { ... on Job { status } } }"
    assert (await client(cancel, {"id": job["id"]}))["cancelJob"]["status"] == "CANCELLED"
    naive = await submit(client, "demo.sleep", {}, runAt="2030-01-01T00:00:00")
    assert naive["__typename"] == "InvalidInput"


async def test_bulk_cancel_and_retry_by_filter(api: Api) -> None:
    alice = api.client(await api.key("alice"))
    bob = api.client(await api.key("bob"))
    for n in range(5):
        await submit(alice, "demo.sleep", {}, maxAttempts=n + 1)
    await submit(alice, "demo.noop", {})
    bobs = await submit(bob, "demo.sleep", {})
    cancel = "mutation($f: JobFilter!) { cancelJobs(filter: $f) { count } }"
    retry = "mutation($f: JobFilter!) { retryJobs(filter: $f) { count } }"
    assert (await alice(cancel, {"f": {"kind": ["demo.sleep"]}}))["cancelJobs"]["count"] == 5
    assert (await alice(cancel, {"f": {"kind": ["demo.sleep"]}}))["cancelJobs"]["count"] == 0
    assert (await bob(JOB, {"id": bobs["id"]}))["job"][
        "status"
    ] == "QUEUED"  # not alice's to cancel
    assert (await alice(retry, {"f": {"status": ["CANCELLED"]}}))["retryJobs"]["count"] == 5
    jobs = await alice(
        '{ jobs(filter: {kind: ["demo.sleep"]}) '
        "{ edges { node { status maxAttempts events { type } } } } }"
    )
    for edge in jobs["jobs"]["edges"]:
        assert edge["node"]["status"] == "QUEUED"
        assert [e["type"] for e in edge["node"]["events"]] == ["SUBMITTED", "CANCELLED", "RETRIED"]
    # Each job got its own budget back, as retryJob gives it (not its kind's default of 3).
    assert sorted(e["node"]["maxAttempts"] for e in jobs["jobs"]["edges"]) == [1, 2, 3, 4, 5]


async def test_queue_stats_count_what_waits(api: Api) -> None:
    client = api.client(await api.key("alice"))
    for _ in range(3):
        await submit(client, "demo.sleep", {})
    await submit(client, "compute.primes", {"limit": 10})
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await submit(client, "demo.sleep", {}, runAt=later)
    queues = (
        await client("{ queues { queue waiting scheduled running failed oldestWaitingSeconds } }")
    )["queues"]
    by_name = {q["queue"]: q for q in queues}
    assert (by_name["default"]["waiting"], by_name["default"]["scheduled"]) == (3, 1)
    assert by_name["cpu"]["waiting"] == 1
    assert by_name["default"]["oldestWaitingSeconds"] >= 0
    other = api.client(await api.key("bob"))
    assert all(q["waiting"] == 0 for q in (await other("{ queues { waiting } }"))["queues"])


async def test_oldest_waiting_counts_from_when_a_job_became_queued(
    api: Api, env: support.Env
) -> None:
    client = api.client(await api.key("alice"))
    job = await submit(client, "compute.primes", {"limit": 10})
    await client("mutation($id: ID!) { cancelJob(id: $id) { __typename } }", {"id": job["id"]})
    # A job submitted a day ago, dead-lettered, and sent again now has waited seconds, not a day.
    await env.sql("UPDATE jobs SET created_at = now() - interval '1 day'")
    await client("mutation($id: ID!) { retryJob(id: $id) { __typename } }", {"id": job["id"]})
    queues = (await client("{ queues { queue waiting oldestWaitingSeconds } }"))["queues"]
    cpu = next(q for q in queues if q["queue"] == "cpu")
    assert cpu["waiting"] == 1
    assert 0 <= cpu["oldestWaitingSeconds"] < 3600
