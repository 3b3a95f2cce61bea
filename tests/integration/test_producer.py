"""The Python producer (ADR-0021) on real PostgreSQL and Redis: the API's checks and records,
as a named key; a job inside the caller's transaction exists iff it commits, and a committed
one is sent once by the relays of every running process (no call to Redis from the producer)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from conveyor import (
    InvalidInput,
    PolicyDenied,
    Priority,
    Producer,
    Unauthenticated,
    UnknownJobKind,
    kinds,
)
from conveyor.domain.policy import Role
from conveyor.services import auth
from tests import support
from tests.conditions import finished, job_status, messages_sent, until


@pytest.fixture
async def engine(env: support.Env) -> AsyncIterator[AsyncEngine]:
    """The service's own engine (SQLAlchemy's defaults, not Conveyor's), on the database it
    shares with Conveyor, and its table."""
    engine = create_async_engine(env.database_url, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def producer(env: support.Env, engine: AsyncEngine) -> AsyncIterator[Producer]:
    env.create_key("billing")
    # The kinds this service imported: here the demo kinds.
    registry = kinds.load(kinds.DEMO_MODULES)
    async with Producer(
        env.database_url, key="billing", registry=registry, settings=env.settings()
    ) as p:
        yield p


async def test_a_producer_submits_as_its_key_with_the_apis_checks(
    producer: Producer, env: support.Env, engine: AsyncEngine
) -> None:
    job = await producer.submit(
        "demo.sleep", {"steps": 2}, idempotency_key="p-1", priority=Priority.HIGH
    )
    assert (job.kind, job.status, job.priority, job.payload) == (
        "demo.sleep",
        "QUEUED",
        Priority.HIGH,
        {"steps": 2, "stepSeconds": 0.5},
    )
    [owner] = await env.sql("SELECT k.name FROM jobs j JOIN api_keys k ON k.id = j.owner_id")
    assert owner["name"] == "billing"
    decisions = await env.sql("SELECT decision, principal_name, job_id FROM policy_decisions")
    assert [(d["decision"], d["principal_name"], d["job_id"]) for d in decisions] == [
        ("allow", "billing", job.id)
    ]
    audit = await env.sql("SELECT actor_name, target FROM audit_log WHERE action = 'job.submit'")
    assert [(a["actor_name"], a["target"]) for a in audit] == [("billing", f"job:{job.id}")]
    again = await producer.submit("demo.sleep", {"steps": 2}, idempotency_key="p-1")
    assert (again.id, again.deduplicated) == (job.id, True)

    with pytest.raises(InvalidInput) as invalid:
        await producer.submit("demo.sleep", {"steps": 0}, max_attempts=0)
    assert {f.path for f in invalid.value.field_errors} == {("payload", "steps"), ("maxAttempts",)}
    with pytest.raises(UnknownJobKind):
        await producer.submit("nope.nothing", {})
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 1


async def test_the_key_is_looked_up_by_name_and_must_be_active(
    env: support.Env, engine: AsyncEngine
) -> None:
    settings = env.settings()
    secret = settings.secret_key.get_secret_value()
    viewer, _ = await auth.create_api_key(
        engine, name="reader", secret_key=secret, role=Role.VIEWER
    )
    async with Producer(
        engine, key="reader", registry=kinds.load(kinds.DEMO_MODULES), settings=settings
    ) as reader:
        with pytest.raises(PolicyDenied) as denied:
            await reader.submit("demo.noop")
        assert denied.value.rule == "role.readOnly"
    [decision] = await env.sql("SELECT decision, principal_id FROM policy_decisions")
    assert (decision["decision"], decision["principal_id"]) == ("deny", viewer.id)
    async with Producer(engine, key="nobody", settings=settings) as nobody:
        with pytest.raises(Unauthenticated, match="no active API key is named 'nobody'"):
            await nobody.submit("demo.noop")
    await env.sql("UPDATE api_keys SET revoked_at = now() WHERE name = 'reader'")
    async with Producer(engine, key=str(viewer.id), settings=settings) as by_id:
        with pytest.raises(Unauthenticated):
            await by_id.submit("demo.noop")
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 0


async def test_a_rolled_back_transaction_leaves_no_job_and_a_committed_one_runs_once(
    producer: Producer, stack: support.Stack, env: support.Env, engine: AsyncEngine
) -> None:
    # Three processes relay (an API and two workers): the job must still be sent once. The
    # sweep would wait an hour: what sends it is the relay.
    slow_sweep = {"REDISPATCH_AFTER_SECONDS": "3600"}
    stack.serve(**slow_sweep)
    stack.worker("w1", **slow_sweep)
    stack.worker("w2", **slow_sweep)
    async with engine.connect() as conn:
        tx = await conn.begin()
        await conn.execute(text("INSERT INTO orders VALUES (1, 100)"))
        dropped = await producer.submit("demo.noop", connection=conn)
        await tx.rollback()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO orders VALUES (2, 200)"))
        kept = await producer.submit("demo.noop", connection=conn)

    assert await finished(env, kept.id) == "SUCCEEDED"
    assert await job_status(env, dropped.id) is None
    decisions = await env.sql(
        "SELECT count(*) AS n FROM policy_decisions WHERE job_id = $1", dropped.id
    )
    audit = await env.sql(
        "SELECT count(*) AS n FROM audit_log WHERE target = $1", f"job:{dropped.id}"
    )
    assert (decisions[0]["n"], audit[0]["n"]) == (0, 0)
    assert [r["id"] for r in await env.sql("SELECT id FROM orders")] == [2]
    starts = await env.sql(
        "SELECT count(*) AS n FROM job_events WHERE job_id = $1 AND type = 'STARTED'", kept.id
    )
    assert starts[0]["n"] == 1
    # Everything ever added to the stream: the committed job, once; nothing for the other.
    assert await messages_sent(env) == 1


async def test_a_session_transaction_carries_the_job_too(
    producer: Producer, stack: support.Stack, env: support.Env, engine: AsyncEngine
) -> None:
    stack.worker(REDISPATCH_AFTER_SECONDS="3600")
    async with AsyncSession(engine) as session:
        async with session.begin():
            await session.execute(text("INSERT INTO orders VALUES (3, 300)"))
            job = await producer.submit(
                "demo.sleep", {"steps": 1, "stepSeconds": 0}, connection=session
            )
        assert await finished(env, job.id) == "SUCCEEDED"
        async with session.begin():
            await producer.submit("demo.noop", connection=session)
            await session.rollback()
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 1
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(ValueError, match="autocommit"):
            await producer.submit("demo.noop", connection=autocommit)


async def test_a_job_committed_while_the_relays_reconnect_is_not_lost(
    producer: Producer, stack: support.Stack, env: support.Env
) -> None:
    slow_sweep = {"REDISPATCH_AFTER_SECONDS": "3600"}
    stack.serve(**slow_sweep)
    stack.worker(**slow_sweep)
    listening = (
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE datname = $1 AND application_name = 'conveyor-relay'"
    )

    async def both_listening() -> bool:
        return (await env.sql(listening, env.database))[0]["n"] == 2

    await until(both_listening, "the API's and the worker's relays to listen")
    await env.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND application_name = 'conveyor-relay'",
        env.database,
    )
    during = await producer.submit("demo.noop")  # its notification finds nobody listening
    await until(both_listening, "the relays to reconnect")
    after = await producer.submit("demo.noop")
    assert await finished(env, during.id) == "SUCCEEDED"
    assert await finished(env, after.id) == "SUCCEEDED"
    assert await messages_sent(env) == 2
