"""Tenants, API key lifecycle (create, list, revoke, expiry) and browser tokens.

Revoking a key publishes `{prefix}:revocations <key id>` after commit: every API process drops
the key from its cache and closes the key's open WebSockets (4403) at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import keys as keys_repo
from app.db import tenants as tenants_repo
from app.db.engine import transaction
from app.domain import policy
from app.domain.errors import FieldError, InvalidInput, NotFound
from app.domain.models import Principal
from app.domain.policy import Role
from app.services import audit, auth
from app.services import jobs as jobs_service
from app.services.deps import Deps

log = logging.getLogger(__name__)

_NAME = "name must be 1 to 100 characters"


def revocations_channel(prefix: str) -> str:
    return f"{prefix}:revocations"


@dataclass(frozen=True)
class KeyInfo:
    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID
    role: str
    is_superuser: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KeyInfo:
        return cls(
            id=row["id"],
            name=row["name"],
            tenant_id=row["tenant_id"],
            role=row["role"],
            is_superuser=row["is_superuser"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )


@dataclass(frozen=True)
class TenantInfo:
    id: uuid.UUID
    name: str
    created_at: datetime


def _check_name(name: str, field: str = "name") -> None:
    if not 1 <= len(name.strip()) <= 100:
        raise InvalidInput("invalid name", [FieldError((field,), _NAME)])


async def create_tenant(engine: AsyncEngine, *, name: str, by: Principal | None) -> TenantInfo:
    """Create a tenant (superusers over GraphQL, or the CLI with `by=None`)."""
    if by is not None:
        policy.require_superuser(by)
    _check_name(name)
    async with transaction(engine) as conn:
        row = await tenants_repo.insert(conn, name=name.strip())
        if row is None:
            raise InvalidInput("invalid name", [FieldError(("name",), "a tenant has this name")])
        await audit.append(
            conn,
            [
                audit.entry(
                    by,
                    "tenant.create",
                    f"tenant:{row['id']}",
                    after={"name": row["name"]},
                    tenant_id=row["id"],
                )
            ],
        )
    return TenantInfo(id=row["id"], name=row["name"], created_at=row["created_at"])


async def tenant_by_name(engine: AsyncEngine, name: str) -> TenantInfo | None:
    async with transaction(engine) as conn:
        row = await tenants_repo.by_name(conn, name=name)
    return TenantInfo(**row) if row else None


async def tenants(deps: Deps, principal: Principal) -> list[TenantInfo]:
    policy.require_superuser(principal)
    async with transaction(deps.engine) as conn:
        return [TenantInfo(**r) for r in await tenants_repo.all(conn)]


async def create_key(
    deps: Deps,
    principal: Principal,
    *,
    name: str,
    role: Role,
    expires_in_days: float | None,
    tenant_id: uuid.UUID | None = None,
) -> tuple[KeyInfo, str]:
    """A tenant admin creates a key in its tenant; a superuser may name another tenant."""
    policy.require(principal, policy.Action.MANAGE_KEYS)
    if tenant_id is not None and tenant_id != principal.tenant_id:
        policy.require_superuser(principal)
    _check_name(name)
    if expires_in_days is not None and not 0 < expires_in_days <= 3650:
        raise InvalidInput(
            "invalid expiry", [FieldError(("expiresInDays",), "must be > 0 and <= 3650")]
        )
    if tenant_id is not None and tenant_id != principal.tenant_id:
        async with transaction(deps.engine) as conn:
            known = await tenants_repo.exists(conn, tenant_id=tenant_id)
        if not known:  # tenants are never deleted: no race with the insert below
            raise InvalidInput("invalid tenant", [FieldError(("tenantId",), "no such tenant")])
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    created, key = await auth.create_api_key(
        deps.engine,
        name=name.strip(),
        role=role,
        tenant_id=tenant_id or principal.tenant_id,
        expires_at=expires_at,
        secret_key=deps.settings.secret_key.get_secret_value(),
        created_by=principal,
    )
    async with transaction(deps.engine) as conn:
        row = await keys_repo.get(conn, key_id=created.id, tenant_id=None)
    assert row is not None
    return KeyInfo.from_row(row), key


async def list_keys(deps: Deps, principal: Principal) -> list[KeyInfo]:
    policy.require(principal, policy.Action.MANAGE_KEYS)
    async with transaction(deps.engine) as conn:
        rows = await keys_repo.list_for_tenant(conn, tenant_id=principal.tenant_id)
    return [KeyInfo.from_row(r) for r in rows]


async def revoke_key(deps: Deps, principal: Principal, key_id: uuid.UUID) -> KeyInfo:
    """Revoke a key of the caller's tenant; it stops working everywhere at once."""
    policy.require(principal, policy.Action.MANAGE_KEYS)
    async with transaction(deps.engine) as conn:
        row = await keys_repo.revoke(conn, key_id=key_id, tenant_id=principal.tenant_id)
        if row is None:
            raise NotFound(str(key_id))
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "key.revoke",
                    f"key:{key_id}",
                    before={"revokedAt": None},
                    after={"revokedAt": row["revoked_at"].isoformat()},
                )
            ],
        )
    await publish_revocation(deps, key_id)
    return KeyInfo.from_row(row)


async def revoke_from_cli(
    engine: AsyncEngine, redis: Redis, prefix: str, key_id: uuid.UUID
) -> KeyInfo | None:
    """Revoke any key (an operator at the console); published like any revocation."""
    async with transaction(engine) as conn:
        row = await keys_repo.revoke(conn, key_id=key_id, tenant_id=None)
        if row is None:
            return None
        await audit.append(
            conn,
            [
                audit.entry(
                    None,
                    "key.revoke",
                    f"key:{key_id}",
                    before={"revokedAt": None},
                    after={"revokedAt": row["revoked_at"].isoformat()},
                    tenant_id=row["tenant_id"],
                )
            ],
        )
    try:
        await redis.publish(revocations_channel(prefix), str(key_id))
    except Exception:
        log.warning("could not publish a key revocation", extra={"key_id": str(key_id)})
    return KeyInfo.from_row(row)


async def keys_of_tenant(engine: AsyncEngine, tenant_id: uuid.UUID) -> list[KeyInfo]:
    async with transaction(engine) as conn:
        return [
            KeyInfo.from_row(r) for r in await keys_repo.list_for_tenant(conn, tenant_id=tenant_id)
        ]


async def publish_revocation(deps: Deps, key_id: uuid.UUID) -> None:
    try:
        await deps.redis.publish(revocations_channel(deps.prefix), str(key_id))
    except Exception:  # the periodic re-check of open connections still closes them
        log.warning("could not publish a key revocation", extra={"key_id": str(key_id)})


async def inactive_keys(deps: Deps, key_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with transaction(deps.engine) as conn:
        return await keys_repo.inactive_among(conn, key_ids=key_ids)


@dataclass(frozen=True)
class MintedToken:
    token: str
    scope: str
    expires_at: datetime


async def mint_token(
    deps: Deps, principal: Principal, *, job_id: uuid.UUID | None, minutes: int
) -> MintedToken:
    """A read-only token for one job (any caller who can see the job) or for the whole tenant
    (admins), valid `minutes`: a web page can follow progress without holding an API key."""
    if principal.token_scope is not None:
        policy.require(principal, policy.Action.MINT_TENANT_TOKEN)  # tokens mint nothing
    limit = deps.settings.token_max_minutes
    if not 1 <= minutes <= limit:
        raise InvalidInput(
            "invalid lifetime", [FieldError(("minutes",), f"must be between 1 and {limit}")]
        )
    if job_id is None:
        policy.require(principal, policy.Action.MINT_TENANT_TOKEN)
        scope = "tenant"
    else:
        if await jobs_service.get(deps, principal, job_id) is None:
            raise NotFound(str(job_id))
        scope = f"job:{job_id}"
    expires = time.time() + minutes * 60
    token = auth.sign_token(
        deps.settings.secret_key.get_secret_value(),
        {
            "key": str(principal.key_id),
            "tenant": str(principal.tenant_id),
            "scope": scope,
            "name": principal.name,
            "exp": int(expires),
        },
    )
    async with transaction(deps.engine) as conn:
        await audit.append(
            conn,
            [audit.entry(principal, "token.create", scope, after={"minutes": minutes})],
        )
    return MintedToken(
        token=token, scope=scope, expires_at=datetime.fromtimestamp(int(expires), UTC)
    )
