"""Schedules with several schedulers (ADR-0022): three scheduler-capable components firing a
1-second schedule for a minute, and a lease holder SIGKILLed mid-minute (real processes)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests import support

CREATE = """mutation($i: CreateScheduleInput!) { createSchedule(input: $i) {
  __typename ... on Schedule { id } ... on UserError { message } } }"""


async def _until(check: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def _fires(env: support.Env) -> list[Any]:
    return list(
        await env.sql(
            "SELECT f.fire_at, f.job_id, j.fire_at AS job_fire_at, j.schedule_id "
            "FROM schedule_fires f LEFT JOIN jobs j ON j.id = f.job_id ORDER BY f.fire_at"
        )
    )


def _check_one_job_per_fire_time(rows: list[Any], schedule_id: str) -> None:
    """Every fire time from the first to the last, one second apart, each with its own job
    carrying that fire time."""
    assert all(r["job_id"] is not None for r in rows)
    assert len({r["job_id"] for r in rows}) == len(rows)
    assert all(r["job_fire_at"] == r["fire_at"] for r in rows)
    assert all(str(r["schedule_id"]) == schedule_id for r in rows)
    gaps = [(b["fire_at"] - a["fire_at"]).total_seconds() for a, b in itertools.pairwise(rows)]
    assert set(gaps) == {1.0}, [g for g in gaps if g != 1.0]


async def _jobs_per_fire_time(env: support.Env) -> int:
    """The most jobs any (schedule, fire time) has: the constraint's promise is 1."""
    rows = await env.sql(
        "SELECT coalesce(max(n), 0) AS n FROM (SELECT count(*) AS n FROM jobs "
        "WHERE schedule_id IS NOT NULL GROUP BY schedule_id, fire_at) AS x"
    )
    return int(rows[0]["n"])


@pytest.mark.timeout(240)
async def test_three_schedulers_make_exactly_one_job_per_fire_time_for_a_minute(
    stack: support.Stack, env: support.Env
) -> None:
    # Three components that can hold the scheduler lease: two APIs and a worker, each with
    # its own connections (in-process: real API and worker code).
    _, base = stack.serve("api-1")
    stack.serve("api-2")
    stack.worker("worker")
    client = support.GraphQLClient(base, env.create_key("ops", admin=True))
    try:
        made = (await client(CREATE, {"i": {"kind": "demo.noop", "everySeconds": 1}}))[
            "createSchedule"
        ]
        assert made["__typename"] == "Schedule", made

        async def a_minute_of_fires() -> list[Any] | None:
            rows = await _fires(env)
            if len(rows) < 2:
                return None
            span = (rows[-1]["fire_at"] - rows[0]["fire_at"]).total_seconds()
            return rows if span >= 60 else None

        rows = await _until(a_minute_of_fires, timeout=150)
    finally:
        await client.aclose()
    assert len(rows) >= 61
    _check_one_job_per_fire_time(rows, made["id"])
    assert await _jobs_per_fire_time(env) == 1
    holders = await env.sql("SELECT holder FROM leases WHERE name = 'scheduler'")
    assert len(holders) == 1


@pytest.mark.chaos
@pytest.mark.timeout(240)
async def test_a_sigkilled_scheduler_is_replaced_with_no_fire_lost_or_doubled(
    stack: support.Stack, env: support.Env
) -> None:
    fast = {"SCHEDULER_LEASE_SECONDS": "3", "SCHEDULER_INTERVAL_SECONDS": "0.2"}
    procs = [stack.serve(f"api-{i}", process=True, **fast) for i in range(3)]
    base = procs[0][1]
    client = support.GraphQLClient(base, env.create_key("ops", admin=True))
    try:
        made = (await client(CREATE, {"i": {"kind": "demo.noop", "everySeconds": 1}}))[
            "createSchedule"
        ]
        assert made["__typename"] == "Schedule", made

        async def holder() -> tuple[str, int] | None:
            rows = await env.sql(
                "SELECT holder, term FROM leases WHERE name = 'scheduler' AND expires_at > now()"
            )
            return (rows[0]["holder"], rows[0]["term"]) if rows else None

        first, term = await _until(holder, timeout=30)
        await _until(lambda: _count_at_least(env, 5), timeout=30)
        victim = next(
            p for p, _ in procs if isinstance(p, support.Proc) and f"-{p.popen.pid}-" in first
        )
        killed_at = (await env.sql("SELECT now() AS t"))[0]["t"]
        os.kill(victim.popen.pid, signal.SIGKILL)
        victim.popen.wait(10)

        async def replaced() -> tuple[str, int] | None:
            found = await holder()
            return found if found is not None and found[0] != first else None

        # Within a few seconds (the 3 s lease, then the next pass), never by the dead one.
        _, new_term = await _until(replaced, timeout=30)
        assert new_term == term + 1
        # Fires made after the takeover, so the gap is behind us.
        after = (await env.sql("SELECT count(*) AS n FROM schedule_fires"))[0]["n"]
        await _until(lambda: _count_at_least(env, after + 5), timeout=30)
    finally:
        await client.aclose()
    rows = await _fires(env)
    _check_one_job_per_fire_time(rows, made["id"])
    assert await _jobs_per_fire_time(env) == 1
    # The fire times due while nobody held the lease were made by the new holder.
    assert any(r["fire_at"] >= killed_at for r in rows)


async def _count_at_least(env: support.Env, n: int) -> bool:
    rows = await env.sql("SELECT count(*) AS n FROM schedule_fires")
    return int(rows[0]["n"]) >= n
