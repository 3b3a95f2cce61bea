"""Submit jobs from a Python service that shares Conveyor's PostgreSQL database (ADR-0021).

    producer = Producer("postgresql://app@db/conveyor", key="billing")
    async with engine.begin() as conn:                      # the service's own transaction
        await conn.execute(orders.insert().values(id=order_id, total=total))
        await producer.submit("reports.generate", {"accountId": 7}, connection=conn)
    # committed: the order and its job exist, and the job runs; rolled back: neither does

A submit is what `submitJob` does (the kind's model validates, the tenant's admission policy
decides and the decision is recorded, the audit row names the key), as the API key `key`
(its name, or its id), in the caller's transaction (`connection=`, a SQLAlchemy
`AsyncConnection` or `AsyncSession`) or in one of its own. The producer sends nothing to
Redis: the job is sent after COMMIT by the outbox relay every API and worker process runs,
woken by a `pg_notify` that PostgreSQL delivers only on commit. A producer that dies right
after COMMIT loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from conveyor.db.engine import create_engine, transaction
from conveyor.domain.errors import UserError
from conveyor.domain.models import Job
from conveyor.domain.states import Priority
from conveyor.kinds.registry import Registry, declared
from conveyor.services import auth, submit
from conveyor.services.deps import Deps
from conveyor.services.dispatch import Dispatcher
from conveyor.settings import Settings

__all__ = ["Producer", "SubmitRequest"]

SubmitRequest = submit.SubmitRequest

Connection = AsyncConnection | AsyncSession


class Producer:
    """Submits jobs as one API key, in the caller's transaction or in one of its own.

    `database`: a PostgreSQL URL (`postgresql://...`; the producer then owns a small pool,
    closed by `aclose()`) or the service's own `AsyncEngine` (asyncpg driver). `key`: the
    name (or id) of an active API key; `tenant`: the tenant's name, when key names repeat
    across tenants. `registry`: the kinds to validate against (default: every kind this
    process imported, as `@job_kind` registers them). The producer reads no environment
    variable; `settings` gives it Conveyor's (for the retry backoff defaults, and the
    Redis URL and prefix the tenant's submit rate limit is counted under: Redis is called
    only for a tenant whose policy sets one).
    """

    def __init__(
        self,
        database: str | AsyncEngine,
        *,
        key: str,
        tenant: str | None = None,
        registry: Registry | None = None,
        settings: Settings | None = None,
        pool_size: int = 5,
    ) -> None:
        self.key = key
        self.tenant = tenant
        settings = settings or Settings.model_construct()
        if isinstance(database, AsyncEngine):
            engine, self._owns_engine = database, False
        else:
            url = Settings._asyncpg_driver(database)
            engine, self._owns_engine = create_engine(url, pool_size=pool_size), True
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        self._deps = Deps(
            settings=settings,
            engine=engine,
            redis=redis,
            # Never started: the producer does not send (the relays do).
            dispatcher=Dispatcher(redis, engine, settings.redis_prefix),
            registry=registry or Registry(declared()),
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, key: str, tenant: str | None = None) -> Producer:
        """A producer configured as any Conveyor process is (DATABASE_URL, REDIS_URL, ...):
        `Producer.from_settings(conveyor.settings.Settings(), key="billing")`."""
        return cls(settings.database_url, key=key, tenant=tenant, settings=settings)

    async def submit(
        self,
        kind: str,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        connection: Connection | None = None,
        idempotency_key: str | None = None,
        run_at: datetime | None = None,
        priority: Priority = Priority.NORMAL,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        backoff_base_seconds: float | None = None,
        backoff_cap_seconds: float | None = None,
    ) -> Job:
        """Submit one job; the stored job (`deduplicated` when `idempotency_key` found an
        earlier one). Raises InvalidInput (with field errors), UnknownJobKind, Conflict,
        PolicyDenied (the refusal is recorded in the same transaction), Unauthenticated
        (no such active key). With `connection`, the job exists iff that transaction
        commits."""
        request = SubmitRequest(
            kind=kind,
            payload=submit.payload_of(input),
            idempotency_key=idempotency_key,
            run_at=run_at,
            priority=Priority(priority),
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            backoff_base_seconds=backoff_base_seconds,
            backoff_cap_seconds=backoff_cap_seconds,
        )
        (result,) = await self.submit_many([request], connection=connection)
        if isinstance(result, UserError):
            raise result
        return result

    async def submit_many(
        self, requests: Sequence[SubmitRequest], *, connection: Connection | None = None
    ) -> list[Job | UserError]:
        """Up to 1,000 jobs in one statement: per request, in order, its job or its error
        (invalid or refused ones are stored nowhere, as with `submitJobs`)."""
        reqs = list(requests)
        if connection is None:
            async with transaction(self._deps.engine) as conn:
                return await self._submit_in(conn, reqs)
        conn = await connection.connection() if isinstance(connection, AsyncSession) else connection
        if _autocommit(conn):
            raise ValueError(
                "the connection is in autocommit mode: a submit must share the caller's "
                "transaction (use `async with engine.begin() as conn`)"
            )
        return await self._submit_in(conn, reqs)

    async def _submit_in(
        self, conn: AsyncConnection, reqs: list[SubmitRequest]
    ) -> list[Job | UserError]:
        principal = await auth.principal_named(conn, key=self.key, tenant=self.tenant)
        return await submit.submit_in(conn, self._deps, principal, reqs)

    async def aclose(self) -> None:
        await self._deps.redis.aclose()
        if self._owns_engine:
            await self._deps.engine.dispose()

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _autocommit(conn: AsyncConnection) -> bool:
    """Whether each statement commits on its own (then nothing is transactional)."""
    return bool(conn.sync_connection and conn.sync_connection._is_autocommit_isolation())
