"""Engine construction and database bootstrap."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy import URL, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from conveyor.domain.errors import ServiceUnavailable

#: Session settings of every connection. No JIT and no parallel plans: every statement here is
#: a short indexed one, and the generic plan of a status-filtered jobs page chose a parallel
#: index scan whose two workers took 8 ms to start for 0.3 ms of work (docs/benchmarks.md).
SERVER_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}


#: A pooled connection idle longer than this is checked before it is handed out.
IDLE_PING_SECONDS = 1.0


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Not SQLAlchemy's pre-ping (BEGIN, a statement, ROLLBACK at every checkout: three
        # round trips on the hot path); `_ping_if_idle` below instead.
        pool_pre_ping=False,
        pool_timeout=10,
        json_serializer=lambda v: orjson.dumps(v).decode(),
        json_deserializer=orjson.loads,
        # A dead server must not hang a request: fail the connect and each statement in time.
        connect_args={"timeout": 5, "command_timeout": 30, "server_settings": SERVER_SETTINGS},
    )
    event.listen(engine.sync_engine.pool, "checkin", _checked_in)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    """A connection that sat in the pool may have died with its server (a PostgreSQL
    restart): check it, and let the pool replace a dead one (DisconnectionError), so the first
    request after an outage succeeds instead of failing once per pooled connection. Under load
    connections go back and forth within milliseconds and are not pinged; when PostgreSQL
    fails under load, the failing statement invalidates the whole pool anyway."""
    if dbapi_connection.driver_connection.is_closed():  # asyncpg saw the server go
        raise DisconnectionError("a pooled connection was closed by its server")
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:
        raise DisconnectionError(f"a pooled connection died while idle: {exc!r}") from exc


def _plain_dsn(url: URL, database: str | None = None) -> str:
    url = url.set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL when it does not exist. True when created."""
    url = make_url(database_url)
    name = url.database or "conveyor"
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        conn = await asyncpg.connect(_plain_dsn(url, "postgres"), timeout=5)
    except asyncpg.InvalidCatalogNameError as exc:
        # The maintenance database `postgres` is where CREATE DATABASE is issued from.
        raise ServiceUnavailable(
            f'PostgreSQL at {server} has no "postgres" database to connect to: create "{name}" '
            f"yourself (`createdb --maintenance-db=template1 {name}`), then run `conveyor migrate`"
        ) from exc
    except (OSError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailable(describe_pg_failure(url, exc)) from exc
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another `conveyor migrate` created it a moment ago: PostgreSQL says so as a
            # duplicate, or, when both CREATEs ran at once, as pg_database's unique name index.
            return False
        except asyncpg.InsufficientPrivilegeError as exc:
            raise ServiceUnavailable(
                f'database "{name}" does not exist on {server} and {_user(url)} may not create '
                f"it: have a superuser create it (`createdb -O {url.username or '$USER'} {name}`), "
                "then run `conveyor migrate`"
            ) from exc
        return True
    finally:
        await conn.close()


def describe_pg_failure(url: URL | str, exc: BaseException) -> str:
    """One line saying what is wrong with PostgreSQL at `url` and what to do about it.

    SQLAlchemy wraps the driver's error (`DBAPIError` -> adapter error -> asyncpg error), and
    its text runs over two lines with a link; the cause underneath says what happened."""
    url = make_url(url) if isinstance(url, str) else url
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    cause = driver_error(exc)
    reason = f"{type(cause).__name__}: {_one_line(cause)}"
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return (
            f'database "{url.database}" does not exist on {server}: '
            "run `conveyor migrate` (it creates it)"
        )
    if isinstance(cause, asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        return (
            f"PostgreSQL at {server} refused {_user(url)} ({reason}): "
            "check the user and password in DATABASE_URL (and pg_hba.conf)"
        )
    if not is_outage(cause):
        return f"PostgreSQL at {server}/{url.database} failed ({reason})"
    return (
        f"PostgreSQL is not reachable at {server}/{url.database} ({reason}). "
        "Start it (e.g. `pg_ctlcluster 15 main start` or `docker compose up -d postgres`) "
        "or set DATABASE_URL."
    )


def driver_error(exc: BaseException) -> BaseException:
    """The error underneath SQLAlchemy's wrappers: the first asyncpg or OS error in the chain,
    else the innermost one."""
    current, seen = exc, {id(exc)}
    while True:
        if isinstance(current, asyncpg.PostgresError | OSError | TimeoutError):
            return current
        inner = getattr(current, "orig", None) or current.__cause__
        if inner is None or id(inner) in seen:
            return current
        seen.add(id(inner))
        current = inner


def _user(url: URL) -> str:
    return f'user "{url.username}"' if url.username else "the connecting user"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "no message"


#: Errors that mean "the database is not reachable right now", not "the statement is wrong".
_OUTAGE = (
    OSError,
    TimeoutError,
    # SQLSTATE class 08: the connection failed, was refused or does not exist.
    asyncpg.exceptions.PostgresConnectionError,
    # 53300: max_connections reached (a restart's reconnect storm, or another client's leak).
    asyncpg.exceptions.TooManyConnectionsError,
    # 57P01-57P03, 57P05: the server is shutting down, crashed, is starting up, or dropped an
    # idle session. Not 57014 (a statement timeout: the statement's fault, not the server's).
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    # "connection is closed", "another operation is in progress" after a broken connection.
    asyncpg.exceptions.InterfaceError,
)
#: InterfaceErrors that are the caller's mistake (a bad argument), never an outage.
_NOT_OUTAGE = (asyncpg.exceptions.DataError, asyncpg.exceptions.ClientConfigurationError)


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) means PostgreSQL is down or the connection broke."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _NOT_OUTAGE):
            return False
        if isinstance(current, _OUTAGE):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, SATimeoutError):  # pool checkout timed out
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


@contextmanager
def outages_unavailable() -> Iterator[None]:
    """A database outage inside the block surfaces as `ServiceUnavailable`."""
    try:
        yield
    except ServiceUnavailable:
        raise
    except Exception as exc:
        if is_outage(exc):
            raise ServiceUnavailable("the database is unavailable; try again shortly") from exc
        raise


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction; a database outage surfaces as `ServiceUnavailable`."""
    with outages_unavailable():
        async with engine.begin() as conn:
            yield conn


@asynccontextmanager
async def statements(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in autocommit mode, for work that is one statement (or several that need
    no common snapshot): each statement is its own transaction, so there is no BEGIN/COMMIT
    round trip around it. Every guarded job statement is a single CTE, atomic by itself."""
    with outages_unavailable():
        async with engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
