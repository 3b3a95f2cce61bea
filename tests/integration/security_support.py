"""Tenants and role keys for the security tests (in-process API, real PostgreSQL and Redis)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.db.engine import create_engine
from app.domain.models import DEFAULT_TENANT_ID
from app.domain.policy import Role
from app.services import auth, keys
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
