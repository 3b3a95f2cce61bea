"""End to end: an API and workers that load different job modules (ADR-0019). A job of a kind
no live worker knows stays QUEUED and visible (never failed, never dead-lettered), the API says
so when it is submitted and on the job, and a worker that knows the kind runs it once it starts.
"""

from __future__ import annotations

import asyncio
import json
import time

from tests import support
from tests.support import SUBMIT, GraphQLClient, wait_for_status

FAST_RESEND = {"REDISPATCH_AFTER_SECONDS": "0.5"}
SERVED = "query($id: ID!) { job(id: $id) { status queueServed attempts { number } } }"


async def _until(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout}s")
        await asyncio.sleep(0.1)


async def _submit(
    client: GraphQLClient, kind: str, payload: dict[str, object], **options: object
) -> tuple[str, list[str]]:
    """The job's id, and the answer's `extensions.warnings`."""
    response = await client.raw(SUBMIT, {"input": {"kind": kind, "payload": payload, **options}})
    body = response.json()
    assert body["data"]["submitJob"]["__typename"] == "Job", body
    return body["data"]["submitJob"]["id"], body.get("extensions", {}).get("warnings", [])


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def test_a_kind_no_worker_knows_waits_queued_until_one_that_knows_it_starts(
    stack: support.Stack, env: support.Env
) -> None:
    api, base = stack.serve(**FAST_RESEND)
    client = GraphQLClient(base, env.create_key("alice"))
    # A first start: Redis had no epoch and nothing waited. News, not a problem.
    (epoch,) = [line for line in _lines(api.output()) if "holds no epoch" in str(line["message"])]
    assert epoch["level"] == "info"

    job_id, warnings = await _submit(client, "compute.primes", {"limit": 1000})
    assert warnings == [
        "compute.primes: no live worker serves queue 'cpu': the job waits, QUEUED, until one "
        "starts (`conveyor worker --queues cpu`)"
    ]

    # This worker reads queue cpu, but its job modules do not define compute.primes.
    demo = stack.worker(
        "demo-worker", "--queues", "default,cpu", JOB_MODULES="conveyor.kinds.demo", **FAST_RESEND
    )
    await _until(lambda: "left jobs of kinds" in demo.output(), "left by the demo worker")
    job = (await client(SERVED, {"id": job_id}))["job"]
    assert job == {"status": "QUEUED", "queueServed": False, "attempts": []}
    # The API reads which workers are live at most every 2 s: ask until it has seen this one
    # (the same idempotency key: one job, answered again).
    knows_not = [
        "compute.primes: no live worker on queue 'cpu' knows kind 'compute.primes': the job "
        "waits, QUEUED, until one whose job modules define it starts"
    ]
    deadline = time.monotonic() + 10
    while (await _submit(client, "compute.primes", {"limit": 10}, idempotencyKey="p"))[1] != (
        knows_not
    ):
        assert time.monotonic() < deadline, "the warning did not change"
        await asyncio.sleep(0.2)
    _, warnings = await _submit(client, "demo.noop", {})
    assert warnings == []

    compute = stack.worker(
        "compute-worker",
        "--queues",
        "cpu",
        process=True,
        JOB_MODULES="conveyor.kinds.compute",
        **FAST_RESEND,
    )
    done = await wait_for_status(client, job_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert done["status"] == "SUCCEEDED"
    assert done["result"] == {"limit": 1000, "primes": 168}
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, "SUCCEEDED")]
    assert done["attempts"][0]["workerId"].endswith(f"-{compute.popen.pid}")  # type: ignore[union-attr]
    started = [line for line in _lines(demo.output()) if line["message"] == "attempt started"]
    assert "compute.primes" not in {line.get("kind") for line in started}
    await _until_served(client, job_id)
    await client.aclose()


async def _until_served(client: GraphQLClient, job_id: str) -> None:
    deadline = time.monotonic() + 10  # the API reads the live workers every 2 s at most
    while not (await client(SERVED, {"id": job_id}))["job"]["queueServed"]:
        assert time.monotonic() < deadline, "queueServed still false"
        await asyncio.sleep(0.2)


async def test_a_worker_warns_at_start_about_kinds_on_queues_it_does_not_serve(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    worker = stack.worker("default-only", "--queues", "default")
    (line,) = [line for line in _lines(worker.output()) if line["level"] == "warning"]
    assert line["message"] == (
        "this worker does not serve queue cpu (--queues / WORKER_QUEUES), where kinds it knows "
        "wait: compute.primes (cpu); their jobs run only on a worker that serves it"
    )
    # The kinds on the queues it serves run. (Also lets the worker settle before it is
    # stopped: one stopped within its first instants waits out its shutdown grace.)
    client = GraphQLClient(base, env.create_key("alice"))
    job_id, _ = await _submit(client, "demo.noop", {})
    assert (await wait_for_status(client, job_id, {"SUCCEEDED", "FAILED"}))["status"] == "SUCCEEDED"
    await client.aclose()
