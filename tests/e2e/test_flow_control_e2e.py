"""A per-key concurrency limit of 1 across four worker processes, one SIGKILLed mid-run
(ADR-0022): never two jobs of one key running at once, and the killed worker's slot is
freed when its attempt is recovered as LOST."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests import support

pytestmark = pytest.mark.chaos

FAST = {"LEASE_SECONDS": "3", "MAINTENANCE_INTERVAL_SECONDS": "0.2", "RECLAIM_IDLE_SECONDS": "3"}
SUBMIT_MANY = """mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on Job { id } } }"""
ACCOUNTS = ("a", "b", "c")


async def _until(check: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _most_at_once(intervals: list[tuple[Any, Any]]) -> int:
    """The most intervals open at one instant (an end before a start at the same instant)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.mark.timeout(240)
async def test_a_per_key_limit_of_one_holds_across_four_workers_and_a_kill_9(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve(**FAST)
    workers = [
        stack.worker(f"worker-{i}", "--concurrency", "4", process=True, **FAST) for i in range(4)
    ]
    client = support.GraphQLClient(base, env.create_key("ops", admin=True))
    try:
        inputs = [
            {"kind": "demo.keyed", "payload": {"account": a, "steps": 4, "stepSeconds": 0.5}}
            for _ in range(6)
            for a in ACCOUNTS
        ]
        results = (await client(SUBMIT_MANY, {"inputs": inputs}))["submitJobs"]
        ids = [r["id"] for r in results]
        assert len(ids) == 18

        async def running_on_a_worker() -> tuple[str, str] | None:
            rows = await env.sql(
                "SELECT a.worker_id, j.concurrency_key FROM job_attempts a "
                "JOIN jobs j ON j.id = a.job_id WHERE a.status = 'RUNNING'"
            )
            return (rows[0]["worker_id"], rows[0]["concurrency_key"]) if rows else None

        worker_id, _ = await _until(running_on_a_worker, timeout=60)
        victim = next(
            w
            for w in workers
            if isinstance(w, support.Proc) and w.popen.pid == int(worker_id.rsplit("-", 1)[1])
        )
        os.kill(victim.popen.pid, signal.SIGKILL)
        victim.popen.wait(10)

        async def all_done() -> bool:
            rows = await env.sql("SELECT status FROM jobs WHERE id = ANY($1::uuid[])", ids)
            return all(r["status"] == "SUCCEEDED" for r in rows)

        await _until(all_done, timeout=120)
    finally:
        await client.aclose()
    attempts = await env.sql(
        "SELECT j.concurrency_key AS key, a.status, a.started_at, a.finished_at "
        "FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.id = ANY($1::uuid[])",
        ids,
    )
    # The kill hit a running attempt: recovered as LOST after its lease, then run again.
    assert any(a["status"] == "LOST" for a in attempts)
    for account in ACCOUNTS:
        mine = [(a["started_at"], a["finished_at"]) for a in attempts if a["key"] == account]
        assert len(mine) >= 6
        assert _most_at_once(mine) == 1, account
    # The accounts did run side by side: the limit is per key, not per kind.
    everything = [(a["started_at"], a["finished_at"]) for a in attempts]
    assert _most_at_once(everything) > 1
