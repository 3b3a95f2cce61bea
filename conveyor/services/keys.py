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

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.db import keys as keys_repo
from conveyor.db import tenants as tenants_repo
from conveyor.db.engine import transaction
from conveyor.domain import policy
from conveyor.domain.errors import FieldError, InvalidInput, NotFound
from conveyor.domain.models import ApiKey, Principal, Tenant
from conveyor.domain.policy import Role
from conveyor.services import audit, auth
from conveyor.services import jobs as jobs_service
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

_NAME = "name must be 1 to 100 characters"


def revocations_channel(prefix: str) -> str:
    return f"{prefix}:revocations"


def _check_name(name: str, field: str = "name") -> None:
    if not 1 <= len(name.strip()) <= 100:
        raise InvalidInput("invalid name", [FieldError((field,), _NAME)])


async def create_tenant(engine: AsyncEngine, *, name: str, by: Principal | None) -> Tenant:
    """Create a tenant (superusers over GraphQL, or the CLI with `by=None`)."""
    if by is not None:
        policy.require_superuser(by)
    _check_name(name)
    async with transaction(engine) as conn:
        tenant = await tenants_repo.insert(conn, name=name.strip())
        if tenant is None:
            raise InvalidInput("invalid name", [FieldError(("name",), "a tenant has this name")])
        await audit.append(
            conn,
            [
                audit.entry(
                    by,
                    "tenant.create",
                    f"tenant:{tenant.id}",
                    after={"name": tenant.name},
                    tenant_id=tenant.id,
                )
            ],
        )
    return tenant


async def tenant_by_name(engine: AsyncEngine, name: str) -> Tenant | None:
    async with transaction(engine) as conn:
        return await tenants_repo.by_name(conn, name=name)


async def tenants(deps: Deps, principal: Principal) -> list[Tenant]:
    policy.require_superuser(principal)
    async with transaction(deps.engine) as conn:
        return await tenants_repo.all(conn)


async def create_key(
    deps: Deps,
    principal: Principal,
    *,
    name: str,
    role: Role,
    expires_in_days: float | None,
    tenant_id: uuid.UUID | None = None,
) -> tuple[ApiKey, str]:
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
    return await auth.create_api_key(
        deps.engine,
        name=name.strip(),
        role=role,
        tenant_id=tenant_id or principal.tenant_id,
        expires_at=expires_at,
        secret_key=deps.settings.secret_key.get_secret_value(),
        created_by=principal,
    )


async def list_keys(deps: Deps, principal: Principal) -> list[ApiKey]:
    policy.require(principal, policy.Action.MANAGE_KEYS)
    async with transaction(deps.engine) as conn:
        return await keys_repo.list_for_tenant(conn, tenant_id=principal.tenant_id)


async def revoke_key(deps: Deps, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key of the caller's tenant; it stops working everywhere at once."""
    policy.require(principal, policy.Action.MANAGE_KEYS)
    revoked = await revoke(deps.engine, deps.redis, deps.prefix, key_id, by=principal)
    if revoked is None:
        raise NotFound(str(key_id))
    return revoked


async def revoke(
    engine: AsyncEngine,
    redis: Redis,
    prefix: str,
    key_id: uuid.UUID,
    *,
    by: Principal | None,
) -> ApiKey | None:
    """Revoke a key of `by`'s tenant (`by=None`: any key, an operator at the console), audit
    it, and publish the revocation so that every API process drops it at once. None when there
    is no such active key."""
    async with transaction(engine) as conn:
        revoked = await keys_repo.revoke(
            conn, key_id=key_id, tenant_id=by.tenant_id if by else None
        )
        if revoked is None:
            return None
        assert revoked.revoked_at is not None
        await audit.append(
            conn,
            [
                audit.entry(
                    by,
                    "key.revoke",
                    f"key:{key_id}",
                    before={"revokedAt": None},
                    after={"revokedAt": revoked.revoked_at.isoformat()},
                    tenant_id=revoked.tenant_id,
                )
            ],
        )
    try:
        await redis.publish(revocations_channel(prefix), str(key_id))
    except Exception:  # the periodic re-check of open connections still closes them
        log.warning("could not publish a key revocation", extra={"key_id": str(key_id)})
    return revoked


async def keys_of_tenant(engine: AsyncEngine, tenant_id: uuid.UUID) -> list[ApiKey]:
    async with transaction(engine) as conn:
        return await keys_repo.list_for_tenant(conn, tenant_id=tenant_id)


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
