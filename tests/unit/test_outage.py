"""Which database errors mean "PostgreSQL is unavailable" (503, retry later) and which are a
statement's own fault."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from conveyor.db.engine import is_outage

exc = asyncpg.exceptions


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        exc.ConnectionDoesNotExistError("closed in the middle of operation"),
        exc.ConnectionFailureError("connection failure"),
        exc.ClientCannotConnectError("cannot connect"),
        exc.TooManyConnectionsError("sorry, too many clients already"),
        exc.AdminShutdownError("terminating connection due to administrator command"),
        exc.CrashShutdownError("terminating connection because of crash of another process"),
        exc.CannotConnectNowError("the database system is starting up"),
        exc.InterfaceError("connection is closed"),
    ],
)
def test_outages(error: BaseException) -> None:
    assert is_outage(error)
    wrapped = DBAPIError("SELECT 1", None, error, connection_invalidated=False)
    assert is_outage(wrapped)


@pytest.mark.parametrize(
    "error",
    [
        exc.UniqueViolationError("duplicate key"),
        exc.QueryCanceledError("canceling statement due to statement timeout"),
        exc.DataError("invalid input for query argument $1"),
        ValueError("bad value"),
    ],
)
def test_not_outages(error: BaseException) -> None:
    assert not is_outage(error)
    assert not is_outage(DBAPIError("SELECT 1", None, error, connection_invalidated=False))
