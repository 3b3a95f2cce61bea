"""Schedules over GraphQL and from code (ADR-0022), against an in-process API and worker on
real PostgreSQL and Redis. The fault tests (three schedulers, a SIGKILLed one) are in
tests/e2e/test_schedules_e2e.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from conveyor.kinds.registry import Registry, job_kind, kind_of, schedule
from conveyor.services import schedules as schedules_service
from conveyor.services.deps import open_deps
from tests import support

CREATE = """mutation($i: CreateScheduleInput!) { createSchedule(input: $i) {
  __typename
  ... on Schedule { id name kind cron everySeconds timezone paused source nextFireAt
                    nextFireTimes(count: 3) }
  ... on UserError { code message }
  ... on InvalidInput { fieldErrors { path message } }
} }"""
SCHEDULES = """{ schedules { id name paused nextFireAt lastFireAt source
  recentFires { fireAt lagSeconds manual jobId jobStatus error } } }"""
_SELECTIONS = {
    "pauseSchedule": "... on Schedule { id paused nextFireAt }",
    "resumeSchedule": "... on Schedule { id paused nextFireAt }",
    "deleteSchedule": "... on DeletedSchedule { id }",
    "triggerSchedule": "... on Job { id status fireAt scheduleId }",
}


class _Op:
    def __mod__(self, name: str) -> str:
        return (
            f"mutation($id: ID!) {{ {name}(id: $id) {{ __typename {_SELECTIONS[name]} "
            "... on UserError { code message } } }"
        )


OP = _Op()


@pytest.fixture
async def gql() -> AsyncIterator[Callable[[str, str], support.GraphQLClient]]:
    """GraphQL clients closed at the end of the test."""
    made: list[support.GraphQLClient] = []

    def client(base: str, key: str) -> support.GraphQLClient:
        made.append(support.GraphQLClient(base, key))
        return made[-1]

    yield client
    for c in made:
        await c.aclose()


Gql = Callable[[str, str], support.GraphQLClient]


async def _until(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_an_interval_schedule_makes_one_normal_job_per_fire_time(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    stack.worker()
    c = gql(base, env.create_key("ops", admin=True))
    made = (await c(CREATE, {"i": {"kind": "demo.noop", "everySeconds": 1, "name": "tick"}}))[
        "createSchedule"
    ]
    assert made["__typename"] == "Schedule", made
    assert (made["name"], made["source"], made["paused"]) == ("tick", "API", False)
    assert len(made["nextFireTimes"]) == 3

    async def three_done() -> list[Any] | None:
        rows = await env.sql(
            "SELECT j.fire_at, j.status, j.schedule_id, j.idempotency_key, f.fire_at AS f "
            "FROM schedule_fires f JOIN jobs j ON j.id = f.job_id ORDER BY f.fire_at"
        )
        return rows if sum(r["status"] == "SUCCEEDED" for r in rows) >= 3 else None

    rows = await _until(three_done)
    # The fire time is on the job, consecutive fire times one second apart, one job each.
    assert all(r["fire_at"] == r["f"] for r in rows)
    assert all(str(r["schedule_id"]) == made["id"] for r in rows)
    gaps = {(b["f"] - a["f"]).total_seconds() for a, b in itertools.pairwise(rows)}
    assert gaps == {1.0}
    # A normal job: the policy decided it and the audit log has it, under the schedule.
    decisions = await env.sql(
        "SELECT DISTINCT principal_name, decision FROM policy_decisions WHERE action = 'submit'"
    )
    assert [tuple(d) for d in decisions] == [("schedule:tick", "allow")]
    audit = await env.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'job.submit'")
    assert audit[0]["n"] >= 3
    listed = (await c(SCHEDULES))["schedules"][0]
    assert listed["recentFires"][0]["jobStatus"] in ("QUEUED", "RUNNING", "SUCCEEDED")

    # Pause: no more fires. Trigger: one now anyway. Resume: fires again. Delete.
    paused = (await c(OP % "pauseSchedule", {"id": made["id"]}))["pauseSchedule"]
    assert (paused["paused"], paused["nextFireAt"]) == (True, None)
    before = len(await env.sql("SELECT 1 FROM schedule_fires"))
    triggered = (await c(OP % "triggerSchedule", {"id": made["id"]}))["triggerSchedule"]
    assert triggered["__typename"] == "Job"
    assert triggered["scheduleId"] == made["id"]
    manual = await env.sql("SELECT count(*) AS n FROM schedule_fires WHERE manual")
    assert manual[0]["n"] == 1
    # While paused nothing else fires: the one fire since is the trigger's.
    await support.wait_for_status(c, triggered["id"], {"SUCCEEDED"})
    assert len(await env.sql("SELECT 1 FROM schedule_fires")) == before + 1
    resumed = (await c(OP % "resumeSchedule", {"id": made["id"]}))["resumeSchedule"]
    assert resumed["paused"] is False
    assert resumed["nextFireAt"]
    await _until(lambda: _more_fires(env, before + 2))
    deleted = (await c(OP % "deleteSchedule", {"id": made["id"]}))["deleteSchedule"]
    assert deleted == {"__typename": "DeletedSchedule", "id": made["id"]}
    assert (await c(SCHEDULES))["schedules"] == []
    actions = await env.sql(
        "SELECT action FROM audit_log WHERE action LIKE 'schedule.%' ORDER BY id"
    )
    assert [a["action"] for a in actions] == [
        "schedule.create",
        "schedule.pause",
        "schedule.trigger",
        "schedule.resume",
        "schedule.delete",
    ]


async def _more_fires(env: support.Env, n: int) -> bool:
    return len(await env.sql("SELECT 1 FROM schedule_fires")) >= n


async def test_bad_schedules_are_refused_with_every_problem_named(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    _, base = stack.serve()
    c = gql(base, env.create_key("ops", admin=True))

    async def create(i: dict[str, Any]) -> dict[str, Any]:
        return (await c(CREATE, {"i": i}))["createSchedule"]  # type: ignore[no-any-return]

    bad = await create(
        {
            "kind": "demo.sleep",
            "cron": "61 * * * *",
            "timezone": "Mars/Olympus",
            "input": {"steps": 0},
        }
    )
    assert bad["__typename"] == "InvalidInput"
    paths = sorted(tuple(f["path"]) for f in bad["fieldErrors"])
    assert paths == [("cron",), ("input", "steps"), ("timezone",)]
    both = await create({"kind": "demo.noop", "cron": "* * * * *", "everySeconds": 5})
    assert both["__typename"] == "InvalidInput"
    never = await create({"kind": "demo.noop", "cron": "0 0 30 2 *"})
    assert never["__typename"] == "InvalidInput"
    assert (await create({"kind": "no.such", "cron": "* * * * *"}))["code"] == "UNKNOWN_JOB_KIND"
    ok = await create(
        {"kind": "demo.noop", "cron": "*/10 30 2 * * *", "name": "n", "timezone": "Europe/Berlin"}
    )
    assert (ok["__typename"], ok["cron"]) == ("Schedule", "*/10 30 2 * * *")
    assert (await create({"kind": "demo.noop", "cron": "* * * * *", "name": "n"}))[
        "code"
    ] == "NAME_TAKEN"
    assert (await env.sql("SELECT count(*) AS n FROM schedules"))[0]["n"] == 1
    viewer = gql(base, env.create_key("v"))
    denied = await viewer.raw(CREATE, {"i": {"kind": "demo.noop", "cron": "* * * * *"}})
    assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


class _Empty(BaseModel):
    pass


async def test_code_defined_schedules_sync_at_start_and_code_owns_their_definition(
    stack: support.Stack, env: support.Env, gql: Gql
) -> None:
    async def handler(ctx: Any, input: _Empty) -> None:
        return None

    def declare(cron: str) -> Registry:
        declared = job_kind(
            "tests.sync",  # a kind the API started below does not know: it leaves it alone
            input=_Empty,
            schedules=[schedule("nightly", cron=cron, timezone="Europe/Berlin")],
        )(handler)
        return Registry([kind_of(declared)])

    registry = declare("0 3 * * *")
    settings = env.settings()
    async with open_deps(settings, registry) as deps:
        assert await schedules_service.sync_code(deps) == 1
        assert await schedules_service.sync_code(deps) == 0  # unchanged: nothing to write
    rows = await env.sql("SELECT id, name, cron, source, timezone FROM schedules")
    assert [(r["name"], r["cron"], r["source"]) for r in rows] == [("nightly", "0 3 * * *", "CODE")]
    schedule_id = str(rows[0]["id"])

    _, base = stack.serve()
    c = gql(base, env.create_key("ops", admin=True))
    update = """mutation($id: ID!) { updateSchedule(id: $id, input: {cron: "0 4 * * *"}) {
        __typename ... on UserError { code } } }"""
    assert (await c(update, {"id": schedule_id}))["updateSchedule"]["code"] == "MANAGED_IN_CODE"
    assert (await c(OP % "deleteSchedule", {"id": schedule_id}))["deleteSchedule"][
        "code"
    ] == "MANAGED_IN_CODE"
    # Pausing is the API's business, and survives the next deploy's sync.
    assert (await c(OP % "pauseSchedule", {"id": schedule_id}))["pauseSchedule"]["paused"]

    async with open_deps(settings, declare("0 4 * * *")) as deps:
        assert await schedules_service.sync_code(deps) == 1
    rows = await env.sql("SELECT cron, paused_at IS NOT NULL AS paused FROM schedules")
    assert [tuple(r) for r in rows] == [("0 4 * * *", True)]
    # The kind no longer declares it: it goes.
    empty = Registry([kind_of(job_kind("tests.sync", input=_Empty)(handler))])
    async with open_deps(settings, empty) as deps:
        assert await schedules_service.sync_code(deps) == 1
    assert await env.sql("SELECT 1 FROM schedules") == []
