"""Tenants and role keys for the security tests (in-process API, real PostgreSQL and Redis)."""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from conveyor.db.engine import create_engine
from conveyor.domain.models import DEFAULT_TENANT_ID
from conveyor.domain.policy import Role
from conveyor.services import auth, keys
from tests import support
from tests.integration.conftest import Api


async def tenant(api: Api, name: str) -> uuid.UUID:
    engine = create_engine(api.settings.database_url, pool_size=1)
    try:
        return (await keys.create_tenant(engine, name=name, by=None)).id
    finally:
        await engine.dispose()


async def key(
    api: Api,
    name: str,
    role: Role,
    tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    *,
    superuser: bool = False,
) -> str:
    engine = create_engine(api.settings.database_url, pool_size=1)
    try:
        _, secret = await auth.create_api_key(
            engine,
            name=name,
            role=role,
            tenant_id=tenant_id,
            superuser=superuser,
            secret_key=api.settings.secret_key.get_secret_value(),
        )
    finally:
        await engine.dispose()
    return secret


@dataclass
class Team:
    """One tenant with a client per role."""

    tenant_id: uuid.UUID
    admin: support.GraphQLClient
    operator: support.GraphQLClient
    submitter: support.GraphQLClient
    submitter2: support.GraphQLClient
    viewer: support.GraphQLClient
    keys: dict[str, str]


async def team(api: Api, name: str) -> Team:
    tid = await tenant(api, name)
    made = {
        "admin": await key(api, f"{name}-admin", Role.ADMIN, tid),
        "operator": await key(api, f"{name}-operator", Role.OPERATOR, tid),
        "submitter": await key(api, f"{name}-submitter", Role.SUBMITTER, tid),
        "submitter2": await key(api, f"{name}-submitter2", Role.SUBMITTER, tid),
        "viewer": await key(api, f"{name}-viewer", Role.VIEWER, tid),
    }
    return Team(
        tenant_id=tid,
        admin=api.client(made["admin"]),
        operator=api.client(made["operator"]),
        submitter=api.client(made["submitter"]),
        submitter2=api.client(made["submitter2"]),
        viewer=api.client(made["viewer"]),
        keys=made,
    )


async def errors_of(
    client: support.GraphQLClient, query: str, variables: dict | None = None
) -> list[dict]:  # type: ignore[type-arg]
    body = (await client.raw(query, variables)).json()
    return body.get("errors") or []  # type: ignore[no-any-return]


_roles = itertools.count()
PRIVILEGES = support.ROOT / "deploy" / "postgres" / "app-privileges.sql"


@asynccontextmanager
async def app_role(database: str) -> AsyncIterator[str]:
    """A login role for the application, made for one test and dropped after it."""
    role = f"cvtest_app_{support.RUN_ID}_{next(_roles)}"
    admin = await support.admin_conn()
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            yield role
        finally:
            conn = await asyncpg.connect(support.pg_url(database, "postgresql"))
            try:
                await conn.execute(f'DROP OWNED BY "{role}"')  # its privileges, here
            finally:
                await conn.close()
            await admin.execute(f'DROP ROLE "{role}"')
    finally:
        await admin.close()


def grant_app_privileges(database: str, role: str) -> None:
    """Run deploy/postgres/app-privileges.sql with psql, as an operator would."""
    subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"app_role={role}",
            "-v",
            f"owner={support.PG_USER}",
            "-h",
            support.PG_HOST,
            "-p",
            str(support.PG_PORT),
            "-U",
            support.PG_USER,
            "-f",
            str(PRIVILEGES),
            database,
        ],
        check=True,
        capture_output=True,
    )
