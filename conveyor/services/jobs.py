"""Reading jobs as a principal may see them: one job, pages of a filter, counts, attempts,
events, and the tenant that owns a job (cached: a key never changes tenant)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import jobs as jobs_repo
from conveyor.db import tenants as tenants_repo
from conveyor.db.engine import statements
from conveyor.domain import policy
from conveyor.domain.errors import FieldError, InvalidInput
from conveyor.domain.models import Attempt, Event, Job, Principal
from conveyor.domain.states import JobStatus
from conveyor.services.deps import Deps

MAX_PAGE = 500


@dataclass(frozen=True)
class JobFilterArgs:
    """What a client filters jobs by (the scope of the principal is added to it here)."""

    statuses: tuple[JobStatus, ...] = ()
    kinds: tuple[str, ...] = ()
    queue: str | None = None


def repo_filter(scope: policy.Scope, flt: JobFilterArgs) -> jobs_repo.JobFilter:
    return jobs_repo.JobFilter(
        statuses=flt.statuses,
        kinds=flt.kinds,
        queue=flt.queue,
        owner_id=scope.owner_id,
        tenant_id=scope.tenant_id,
        job_id=scope.job_id,
    )


async def get_scoped(conn: AsyncConnection, scope: policy.Scope, job_id: uuid.UUID) -> Job | None:
    if scope.job_id is not None and scope.job_id != job_id:
        return None
    return await jobs_repo.get(
        conn, job_id=job_id, owner_id=scope.owner_id, tenant_id=scope.tenant_id
    )


async def get(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job | None:
    async with statements(deps.engine) as conn:
        return await get_scoped(conn, policy.read_scope(principal), job_id)


async def page(
    deps: Deps,
    principal: Principal,
    flt: JobFilterArgs,
    *,
    first: int = 50,
    after: tuple[datetime, uuid.UUID] | None = None,
    updated_since: datetime | None = None,
) -> tuple[list[Job], bool, jobs_repo.JobFilter]:
    """Newest first, after the keyset position `after`; with whether more follow and the
    filter to count with."""
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(
            "invalid page size", [FieldError(("first",), f"must be between 0 and {MAX_PAGE}")]
        )
    scoped = replace(repo_filter(policy.read_scope(principal), flt), updated_since=updated_since)
    async with statements(deps.engine) as conn:
        found, has_next = await jobs_repo.page(conn, flt=scoped, first=first, after=after)
    return found, has_next, scoped


async def count(deps: Deps, flt: jobs_repo.JobFilter, *, at_most: int | None = None) -> int:
    async with statements(deps.engine) as conn:
        return await jobs_repo.count(conn, flt=flt, at_most=at_most)


async def attempts(deps: Deps, job_ids: list[uuid.UUID]) -> list[Attempt]:
    async with statements(deps.engine) as conn:
        return await jobs_repo.attempts(conn, job_ids=job_ids)


async def events_after(deps: Deps, job_id: uuid.UUID, after: int, limit: int) -> list[Event]:
    async with statements(deps.engine) as conn:
        return await jobs_repo.events(conn, job_id=job_id, after=after, limit=limit)


async def get_many(
    deps: Deps, principal: Principal, job_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Job]:
    """Jobs by id, leaving out those the principal may not see."""
    scope = policy.read_scope(principal)
    async with statements(deps.engine) as conn:
        found = await jobs_repo.get_many(conn, job_ids=job_ids)
        owners = {j.owner_id for j in found.values()}
        tenants = await tenants_repo.of_keys(conn, key_ids=list(owners)) if owners else {}
    return {
        k: v
        for k, v in found.items()
        if (tenant := tenants.get(v.owner_id)) is not None and scope.allows(tenant, v.owner_id, k)
    }


async def tenant_of(deps: Deps, owner_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant of a job owner (a key never changes tenant: cached for the process)."""
    key = ("tenant_of", owner_id)
    cached = deps.cache.get(key)
    if isinstance(cached, uuid.UUID):
        return cached
    async with statements(deps.engine) as conn:
        found = (await tenants_repo.of_keys(conn, key_ids=[owner_id])).get(owner_id)
    if found is not None:
        deps.cache.put(key, found)
    return found
