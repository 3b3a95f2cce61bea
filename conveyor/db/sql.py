"""Statement building blocks: guarded job statements that append an event in the same round
trip, and keyset pages of the append-only logs."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db.rows import EVENT_COLUMNS, JOB_COLUMNS_QUALIFIED
from conveyor.domain.states import Transition

T = TypeVar("T")

#: `jobs.dispatched_at` of a QUEUED job whose message reached a worker that does not know its
#: kind and gave it back (ADR-0019): not NULL, so a late "sent" mark (which only marks NULL)
#: cannot hide it, and the resend sweep sends it again once a live worker knows the kind.
LEFT_FOR_ANOTHER_WORKER = "'-infinity'::timestamptz"


def with_event(
    job_cte: str,
    event_type: str,
    *,
    progress: str = "NULL",
    message: str = "NULL",
    data: str = "NULL",
    before: str = "",
    extra_ctes: str = "",
    json_params: tuple[str, ...] = (),
) -> TextClause:
    """Wrap `job_cte` (a job UPDATE/INSERT ... RETURNING the job columns, aliased `j`) so that
    every job row it touched gets one event with `seq = j.last_seq`, and return job + event rows.

    The job statement must increment `last_seq` itself: the row lock it takes is what keeps
    `seq` gapless and ordered per job. If the guard in its WHERE clause matches nothing, nothing
    is written and nothing is returned: the caller reads that as "stale or duplicate".
    `before` holds CTEs the job statement reads from (ending with a comma); `extra_ctes` holds
    CTEs that read `j` (starting with a comma).
    """
    sql = f"""
    WITH {before}j AS ({job_cte} RETURNING {JOB_COLUMNS_QUALIFIED}){extra_ctes},
    e AS (
        INSERT INTO job_events (job_id, seq, type, status, progress, message, data, at)
        SELECT j.id, j.last_seq, {event_type}, j.status, {progress}, {message}, {data}, now()
        FROM j
        RETURNING *
    )
    SELECT j.*, {EVENT_COLUMNS} FROM j JOIN e ON e.job_id = j.id
    """
    return typed(sql, json_params)


def guard(transition: Transition[Any], column: str = "status") -> str:
    """The WHERE clause that lets `transition` happen only from its source statuses."""
    return in_(column, transition.sources)


def in_(column: str, statuses: Iterable[enum.StrEnum]) -> str:
    quoted = sorted(f"'{s.value}'" for s in statuses)
    return f"{column} IN ({', '.join(quoted)})"


def unnest_insert(
    table: str, columns: Sequence[tuple[str, str]], *, prefix: str, where: str = "TRUE"
) -> str:
    """`INSERT INTO table` of rows passed column-wise: one array parameter per column, named
    `{prefix}{column}`, cast to `{type}[]` (`columns`: (name, type) pairs), keeping the rows
    that pass `where` (written over the alias `r`). One statement for any number of rows, and
    a fragment other statements embed as a CTE (a submit's decisions and audit rows)."""
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"CAST(:{prefix}{name} AS {kind}[])" for name, kind in columns)
    picked = ", ".join(f"r.{name}" for name, _ in columns)
    return (
        f"INSERT INTO {table} ({names}) "
        f"SELECT {picked} FROM unnest({arrays}) AS r({names}) WHERE {where}"
    )


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class Direct:
    """A statement with `:named` parameters, run by asyncpg itself on an autocommit
    connection: the hot single-statement writes (a submit, ADR-0025), where SQLAlchemy's
    per-execution work (parameter processing, the compiled cache, the cursor adapter and its
    greenlet) cost more CPU than PostgreSQL's. asyncpg prepares it once per connection.
    Inside a transaction it runs through SQLAlchemy as any statement (SQLAlchemy's asyncpg
    adapter begins the transaction at its first statement, which a direct call would skip).
    Column values are decoded by the same codecs either way."""

    def __init__(self, sql: str) -> None:
        self.clause = text(sql)
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.sql = _NAMED.sub(number, sql)

    async def rows(
        self, conn: AsyncConnection, params: Mapping[str, Any]
    ) -> Sequence[Mapping[Any, Any]]:
        sync = conn.sync_connection
        if sync is None or sync.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            return (await conn.execute(self.clause, dict(params))).mappings().all()
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        return await driver.fetch(self.sql, *(params[n] for n in self.names))  # type: ignore[no-any-return]


def typed(sql: str, json_params: tuple[str, ...] = ()) -> TextClause:
    clause = text(sql)
    if json_params:
        # Python None must be SQL NULL, not the JSON literal `null`.
        clause = clause.bindparams(
            *(bindparam(p, type_=JSONB(none_as_null=True)) for p in json_params)
        )
    return clause


async def newest_first(
    conn: AsyncConnection,
    table: str,
    clauses: list[str],
    params: dict[str, Any],
    convert: Callable[[Mapping[Any, Any]], T],
    *,
    first: int,
    since: datetime | None,
    before_id: int | None,
) -> tuple[list[T], bool]:
    """A page of an append-only log (`audit_log`, `policy_decisions`): rows matching `clauses`
    (bound by `params`), at or after `since`, newest first, keyset-paginated on `id`. Returns
    the rows as `convert` makes them, and whether more follow."""
    clauses = [*clauses]
    params = {**params, "limit": first + 1}
    if since is not None:
        clauses.append("at >= :since")
        params["since"] = since
    if before_id is not None:
        clauses.append("id < :before")
        params["before"] = before_id
    result = await conn.execute(
        text(f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT :limit"),
        params,
    )
    found = [convert(r) for r in result.mappings()]
    return found[:first], len(found) > first
