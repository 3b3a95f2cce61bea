"""GraphQL for tenants, API keys, tokens, the admission policy, its decisions and the audit log.

Merged into the Query and Mutation roots by `api.schema`. Every field is scoped to the
caller's tenant; roles are checked in the services (a refusal is a FORBIDDEN error).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import strawberry

from conveyor.api import cursors
from conveyor.api import types as t
from conveyor.api import user_errors as ue
from conveyor.api.context import Context
from conveyor.api.security_types import (
    ApiKey,
    AuditEntry,
    AuditEntryEdge,
    AuditLogConnection,
    AuditLogFilter,
    CreateApiKeyResult,
    CreatedApiKey,
    CreateTenantResult,
    CreateTokenResult,
    Policy,
    PolicyDecision,
    PolicyDecisionConnection,
    PolicyDecisionEdge,
    PolicyDecisionFilter,
    PolicyInput,
    RevokeApiKeyResult,
    SetPolicyResult,
    Tenant,
    Token,
)
from conveyor.domain import errors, policy
from conveyor.services import audit, keys
from conveyor.services import policy as policy_service

Info = strawberry.Info[Context, None]

MAX_LOG_PAGE = 200


def _first(first: int | None) -> int:
    first = t.DEFAULT_PAGE if first is None else first
    if not 1 <= first <= MAX_LOG_PAGE:
        raise errors.InvalidInput(
            "invalid page size",
            [errors.FieldError(("first",), f"must be between 1 and {MAX_LOG_PAGE}")],
        )
    return first


def _page_info(edges: Sequence[PolicyDecisionEdge | AuditEntryEdge], has_next: bool) -> t.PageInfo:
    return t.PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None)


def _id(value: strawberry.ID | None, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise errors.InvalidInput("invalid id", [errors.FieldError((field,), "not an id")]) from exc


@strawberry.type
class SecurityQuery:
    @strawberry.field(description="API keys of the caller's tenant (admins). Never the secrets.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        ctx = info.context
        return [ApiKey.from_domain(k) for k in await keys.list_keys(ctx.deps, ctx.principal)]

    @strawberry.field(description="The admission policy in force for the caller's tenant (admins).")
    async def policy(self, info: Info) -> Policy:
        ctx = info.context
        return Policy.from_domain(await policy_service.get(ctx.deps, ctx.principal))

    @strawberry.field(
        description="Admission decisions of the caller's tenant, newest first (admins)."
    )
    async def policy_decisions(
        self,
        info: Info,
        filter: PolicyDecisionFilter | None = None,
        first: int | None = t.DEFAULT_PAGE,
        after: str | None = None,
    ) -> PolicyDecisionConnection:
        ctx = info.context
        flt = filter or PolicyDecisionFilter()
        found, has_next = await policy_service.decisions_page(
            ctx.deps,
            ctx.principal,
            decision=flt.decision,
            action=flt.action,
            principal_id=_id(flt.principal_id, "principalId"),
            job_kind=flt.job_kind,
            first=_first(first),
            before_id=cursors.row_position(after),
        )
        edges = [
            PolicyDecisionEdge(cursor=cursors.of_row(d.id), node=PolicyDecision.from_domain(d))
            for d in found
        ]
        return PolicyDecisionConnection(edges=edges, page_info=_page_info(edges, has_next))

    @strawberry.field(description="The audit log of the caller's tenant, newest first (admins).")
    async def audit_log(
        self,
        info: Info,
        filter: AuditLogFilter | None = None,
        first: int | None = t.DEFAULT_PAGE,
        after: str | None = None,
    ) -> AuditLogConnection:
        ctx = info.context
        flt = filter or AuditLogFilter()
        found, has_next = await audit.page(
            ctx.deps,
            ctx.principal,
            action=flt.action,
            actor_id=_id(flt.actor_id, "actorId"),
            target=flt.target,
            first=_first(first),
            before_id=cursors.row_position(after),
        )
        edges = [
            AuditEntryEdge(cursor=cursors.of_row(a.id), node=AuditEntry.from_domain(a))
            for a in found
        ]
        return AuditLogConnection(edges=edges, page_info=_page_info(edges, has_next))

    @strawberry.field(description="Every tenant (superusers).")
    async def tenants(self, info: Info) -> list[Tenant]:
        ctx = info.context
        return [Tenant.from_domain(x) for x in await keys.tenants(ctx.deps, ctx.principal)]


@strawberry.type
class SecurityMutation:
    @strawberry.mutation(
        description="Create an API key in the caller's tenant (admins; a superuser may name "
        "another tenant). The secret is in the answer, once."
    )
    async def create_api_key(
        self,
        info: Info,
        name: str,
        role: policy.Role,
        expires_in_days: float | None = None,
        tenant_id: strawberry.ID | None = None,
    ) -> CreateApiKeyResult:
        ctx = info.context
        try:
            created, secret = await keys.create_key(
                ctx.deps,
                ctx.principal,
                name=name,
                role=role,
                expires_in_days=expires_in_days,
                tenant_id=_id(tenant_id, "tenantId"),
            )
        except errors.InvalidInput as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return CreatedApiKey(api_key=ApiKey.from_domain(created), key=secret)

    @strawberry.mutation(
        description="Revoke a key of the caller's tenant (admins): it stops working at once, "
        "its tokens too, and its open WebSockets are closed (4403)."
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyResult:
        ctx = info.context
        try:
            key_id = _id(id, "id")
            assert key_id is not None
            revoked = await keys.revoke_key(ctx.deps, ctx.principal, key_id)
        except (errors.NotFound, errors.InvalidInput):
            return ue.NotFound(message=f"no key {id!r}", code="NOT_FOUND", id=id)
        return ApiKey.from_domain(revoked)

    @strawberry.mutation(
        description="A read-only token valid `minutes`, for one job (`jobId`, anyone who can "
        "see it) or the whole tenant (admins): send it as `Authorization: Bearer <token>`."
    )
    async def create_token(
        self, info: Info, minutes: int = 15, job_id: strawberry.ID | None = None
    ) -> CreateTokenResult:
        ctx = info.context
        try:
            minted = await keys.mint_token(
                ctx.deps, ctx.principal, job_id=_id(job_id, "jobId"), minutes=minutes
            )
        except (errors.InvalidInput, errors.NotFound) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return Token(token=minted.token, scope=minted.scope, expires_at=minted.expires_at)

    @strawberry.mutation(
        description="Store a new version of the tenant's admission policy (admins). With "
        "`expectedVersion`, fails with Conflict when it changed meanwhile."
    )
    async def set_policy(
        self, info: Info, input: PolicyInput, expected_version: int | None = None
    ) -> SetPolicyResult:
        ctx = info.context
        try:
            stored = await policy_service.set_policy(
                ctx.deps, ctx.principal, input.document(), expected_version
            )
        except (errors.InvalidInput, errors.Conflict) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return Policy.from_domain(stored)

    @strawberry.mutation(description="Create a tenant (superusers).")
    async def create_tenant(self, info: Info, name: str) -> CreateTenantResult:
        ctx = info.context
        try:
            created = await keys.create_tenant(ctx.deps.engine, name=name, by=ctx.principal)
        except errors.InvalidInput as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return Tenant.from_domain(created)
