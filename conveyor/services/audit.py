"""The audit log: who changed what, appended in the same transaction as the change.

Request metadata (request id, client address) is set once per HTTP request or WebSocket
connection by the API layer in a context variable, like a logging context: it crosses every
use case but none of them decides anything with it.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import audit as audit_repo
from conveyor.db.engine import transaction
from conveyor.domain import policy
from conveyor.domain.models import AuditEntry, AuditRecord, Principal
from conveyor.services.deps import Deps


@dataclass(frozen=True)
class RequestInfo:
    request_id: str | None = None
    client_addr: str | None = None


REQUEST: ContextVar[RequestInfo] = ContextVar(
    "conveyor_request",
    default=RequestInfo(),  # noqa: B039 - frozen, so sharing it is safe
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def entry(
    principal: Principal | None,
    action: str,
    target: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    tenant_id: uuid.UUID | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    info = REQUEST.get()
    return AuditEntry(
        tenant_id=tenant_id or (principal.tenant_id if principal else None),
        actor_id=principal.id if principal else None,
        actor_name=actor_name or (_actor(principal) if principal else "cli"),
        action=action,
        target=target,
        before=before,
        after=after,
        request_id=info.request_id,
        client_addr=info.client_addr,
    )


def _actor(principal: Principal) -> str:
    return f"token:{principal.name}" if principal.token_scope else principal.name


async def append(conn: AsyncConnection, entries: list[AuditEntry]) -> None:
    await audit_repo.append(conn, entries=entries)


async def page(
    deps: Deps,
    principal: Principal,
    *,
    action: str | None,
    actor_id: uuid.UUID | None,
    target: str | None,
    first: int,
    before_id: int | None,
) -> tuple[list[AuditRecord], bool]:
    policy.require(principal, policy.Action.READ_AUDIT)
    flt = audit_repo.AuditFilter(
        tenant_id=principal.tenant_id, action=action, actor_id=actor_id, target=target
    )
    async with transaction(deps.engine) as conn:
        return await audit_repo.page(conn, flt=flt, first=first, before_id=before_id)
