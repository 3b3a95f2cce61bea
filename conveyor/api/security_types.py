"""GraphQL types of security and administration: keys, tokens, tenants, the admission policy,
its decisions and the audit log. Domain values and rows become these here, nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from conveyor.api import types as t
from conveyor.api import user_errors as ue
from conveyor.domain import models, policy


@strawberry.type
class ApiKey:
    id: strawberry.ID
    name: str
    role: policy.Role
    tenant_id: strawberry.ID
    is_superuser: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @strawberry.field(description="Neither revoked nor expired.")
    def active(self) -> bool:
        now = datetime.now(self.created_at.tzinfo)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def from_domain(cls, k: models.ApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(str(k.id)),
            name=k.name,
            role=policy.Role(k.role),
            tenant_id=strawberry.ID(str(k.tenant_id)),
            is_superuser=k.is_superuser,
            created_at=k.created_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
        )


@strawberry.type
class CreatedApiKey:
    api_key: ApiKey
    key: str = strawberry.field(description="The secret key: shown this once, never stored.")


@strawberry.type(description="A read-only bearer token for browsers.")
class Token:
    token: str
    scope: str = strawberry.field(description="`tenant` or `job:<id>`.")
    expires_at: datetime


@strawberry.type
class Tenant:
    id: strawberry.ID
    name: str
    created_at: datetime

    @classmethod
    def from_domain(cls, tenant: models.Tenant) -> Tenant:
        return cls(id=strawberry.ID(str(tenant.id)), name=tenant.name, created_at=tenant.created_at)


@strawberry.type
class RoleKinds:
    role: policy.Role
    kinds: list[str] = strawberry.field(description="Glob patterns of job kinds, e.g. `demo.*`.")


@strawberry.type(description="A version of the tenant's admission policy.")
class Policy:
    version: int = strawberry.field(description="0: the built-in defaults (never edited).")
    role_kinds: list[RoleKinds]
    max_waiting_jobs: int | None
    max_running_jobs: int | None
    max_payload_bytes: int | None
    submit_rate_per_second: float | None
    submit_burst: int | None

    @classmethod
    def from_domain(cls, p: policy.Policy) -> Policy:
        return cls(
            version=p.version,
            role_kinds=[
                RoleKinds(role=policy.Role(r), kinds=list(k))
                for r, k in sorted(p.role_kinds.items())
            ],
            max_waiting_jobs=p.max_waiting_jobs,
            max_running_jobs=p.max_running_jobs,
            max_payload_bytes=p.max_payload_bytes,
            submit_rate_per_second=p.submit_rate_per_second,
            submit_burst=p.submit_burst,
        )


@strawberry.input
class RoleKindsInput:
    role: policy.Role
    kinds: list[str]


@strawberry.input(description="A whole policy: fields left out take the built-in defaults.")
class PolicyInput:
    role_kinds: list[RoleKindsInput] | None = None
    max_waiting_jobs: int | None = None
    max_running_jobs: int | None = None
    max_payload_bytes: int | None = 256 * 1024
    submit_rate_per_second: float | None = None
    submit_burst: int | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "maxWaitingJobs": self.max_waiting_jobs,
            "maxRunningJobs": self.max_running_jobs,
            "maxPayloadBytes": self.max_payload_bytes,
            "submitRatePerSecond": self.submit_rate_per_second,
            "submitBurst": self.submit_burst,
        }
        if self.role_kinds is not None:
            doc["roleKinds"] = {rk.role.value: rk.kinds for rk in self.role_kinds}
        return doc


@strawberry.type
class PolicyDecision:
    id: strawberry.ID
    at: datetime
    principal_id: strawberry.ID
    principal_name: str
    action: str
    job_kind: str | None
    job_id: strawberry.ID | None
    decision: str = strawberry.field(description="`allow` or `deny`.")
    rule: str
    reason: str
    policy_version: int
    request_id: str | None

    @classmethod
    def from_domain(cls, d: models.DecisionRecord) -> PolicyDecision:
        return cls(
            id=strawberry.ID(str(d.id)),
            at=d.at,
            principal_id=strawberry.ID(str(d.principal_id)),
            principal_name=d.principal_name,
            action=d.action,
            job_kind=d.job_kind,
            job_id=strawberry.ID(str(d.job_id)) if d.job_id else None,
            decision="allow" if d.allowed else "deny",
            rule=d.rule,
            reason=d.reason,
            policy_version=d.policy_version,
            request_id=d.request_id,
        )


@strawberry.type
class PolicyDecisionEdge:
    cursor: str
    node: PolicyDecision


@strawberry.type
class PolicyDecisionConnection:
    edges: list[PolicyDecisionEdge]
    page_info: t.PageInfo


@strawberry.input
class PolicyDecisionFilter:
    decision: str | None = strawberry.field(default=None, description="`allow` or `deny`.")
    action: str | None = None
    principal_id: strawberry.ID | None = None
    job_kind: str | None = None


@strawberry.type
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor_id: strawberry.ID | None
    actor_name: str
    action: str
    target: str | None
    before: JSON | None
    after: JSON | None
    request_id: str | None
    client_address: str | None

    @classmethod
    def from_domain(cls, a: models.AuditRecord) -> AuditEntry:
        return cls(
            id=strawberry.ID(str(a.id)),
            at=a.at,
            actor_id=strawberry.ID(str(a.actor_id)) if a.actor_id else None,
            actor_name=a.actor_name,
            action=a.action,
            target=a.target,
            before=cast(JSON, a.before),
            after=cast(JSON, a.after),
            request_id=a.request_id,
            client_address=a.client_addr,
        )


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntry


@strawberry.type
class AuditLogConnection:
    edges: list[AuditEntryEdge]
    page_info: t.PageInfo


@strawberry.input
class AuditLogFilter:
    action: str | None = strawberry.field(
        default=None, description="An action (`job.cancel`) or a prefix ending in a dot (`job.`)."
    )
    actor_id: strawberry.ID | None = None
    target: str | None = None


CreateApiKeyResult = Annotated[
    CreatedApiKey | ue.InvalidInput, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[ApiKey | ue.NotFound, strawberry.union("RevokeApiKeyResult")]
CreateTokenResult = Annotated[
    Token | ue.InvalidInput | ue.NotFound, strawberry.union("CreateTokenResult")
]
SetPolicyResult = Annotated[
    Policy | ue.InvalidInput | ue.Conflict, strawberry.union("SetPolicyResult")
]
CreateTenantResult = Annotated[Tenant | ue.InvalidInput, strawberry.union("CreateTenantResult")]
