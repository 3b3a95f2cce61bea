"""Admission: every submit and retry is decided by the tenant's policy, in the transaction that
enqueues (or refuses) it, and the decision is recorded there too.

The per-principal submit rate is a token bucket in Redis (one Lua call, atomic). Redis may lose
its counters (restart, eviction): then buckets start full again. When Redis cannot be reached
the limiter FAILS OPEN (logged, and the decision's reason says so): the per-tenant job limits
are counted in PostgreSQL and still hold, and a job could not be delivered without Redis anyway.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import limits as limits_repo
from conveyor.db import policy as policy_repo
from conveyor.db import tenants as tenants_repo
from conveyor.db.engine import transaction
from conveyor.domain import limits, policy
from conveyor.domain.errors import Conflict, PolicyDenied
from conveyor.domain.models import DecisionEntry, DecisionRecord, Principal
from conveyor.services import audit
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: rate/s, burst, wanted. Returns {granted, ms until one more token}.
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) * 1000 / rate) end
return {granted, wait}
"""


async def current(conn: AsyncConnection, tenant_id: uuid.UUID) -> policy.Policy:
    version, document = await policy_repo.current(conn, tenant_id=tenant_id)
    return policy.Policy.from_json(document, version)


def cached(deps: Deps, tenant_id: uuid.UUID) -> policy.Policy | None:
    """The tenant's policy as this process last read it, or None. Possibly outdated: a submit
    decided by it writes only if it is still current (`jobs.insert_admitted`, ADR-0025)."""
    found = deps.cache.get(("policy", tenant_id))
    return found if isinstance(found, policy.Policy) else None


def remember(deps: Deps, tenant_id: uuid.UUID, read: policy.Policy) -> None:
    known = cached(deps, tenant_id)
    if known is None or known.version <= read.version:
        deps.cache.put(("policy", tenant_id), read)


async def get(deps: Deps, principal: Principal) -> policy.Policy:
    policy.require(principal, policy.Action.MANAGE_POLICY)
    async with transaction(deps.engine) as conn:
        return await current(conn, principal.tenant_id)


async def set_policy(
    deps: Deps, principal: Principal, document: dict[str, Any], expected_version: int | None
) -> policy.Policy:
    """Store a new version (admins). With `expected_version`, refuse (Conflict) when someone
    else changed the policy since it was read."""
    policy.require(principal, policy.Action.MANAGE_POLICY)
    async with transaction(deps.engine) as conn:
        before = await current(conn, principal.tenant_id)
        if expected_version is not None and expected_version != before.version:
            raise Conflict(f"the policy is at version {before.version}, not {expected_version}", "")
        new = policy.Policy.from_json(document, before.version + 1)
        stored = await policy_repo.insert_version(
            conn,
            tenant_id=principal.tenant_id,
            version=new.version,
            document=new.to_json(),
            created_by=principal.id,
        )
        if not stored:
            raise Conflict("the policy was changed concurrently; read it and try again", "")
        # maxRunningJobs is a run-time limit: claims read it from concurrency_limits.
        await limits_repo.set_limit(
            conn,
            scope=limits.tenant_scope(principal.tenant_id),
            limit=limits.Limit(new.max_running_jobs) if new.max_running_jobs else None,
            source="policy",
            by=principal.name,
        )
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "policy.update",
                    f"policy:v{new.version}",
                    before={"version": before.version, **before.to_json()},
                    after={"version": new.version, **new.to_json()},
                )
            ],
        )
    remember(deps, principal.tenant_id, new)
    return new


@dataclass(frozen=True)
class Candidate:
    kind: str
    payload_bytes: int
    job_id: uuid.UUID | None = None


@dataclass
class Admission:
    """The decisions for a batch, in order, plus what is needed to record them."""

    principal: Principal
    action: str
    candidates: Sequence[Candidate]
    decisions: list[policy.Decision]
    version: int

    def rows(self, job_ids: Sequence[uuid.UUID | None]) -> list[DecisionEntry]:
        request_id = audit.REQUEST.get().request_id
        p = self.principal
        return [
            DecisionEntry(
                tenant_id=p.tenant_id,
                principal_id=p.id,
                principal_name=p.name,
                action=self.action,
                job_kind=c.kind,
                job_id=job_id,
                allowed=d.allowed,
                rule=d.rule,
                reason=d.reason,
                policy_version=self.version,
                request_id=request_id,
            )
            for c, d, job_id in zip(self.candidates, self.decisions, job_ids, strict=True)
        ]


async def admit(
    conn: AsyncConnection,
    deps: Deps,
    principal: Principal,
    action: str,
    candidates: Sequence[Candidate],
    *,
    current_policy: policy.Policy | None = None,
) -> Admission:
    """Decide every candidate (inside the caller's transaction). Record with `record`.

    `current_policy`: the tenant's policy when the caller already read it (`prepare`)."""
    if current_policy is None:
        current_policy = await current(conn, principal.tenant_id)
    usage = policy.Usage()
    if current_policy.max_waiting_jobs is not None:
        await tenants_repo.lock(conn, tenant_id=principal.tenant_id)
        waiting, running = await tenants_repo.usage(conn, tenant_id=principal.tenant_id)
        usage = policy.Usage(waiting=waiting, running=running)
    decisions: list[policy.Decision] = []
    admitted = 0
    for c in candidates:
        d = policy.evaluate(
            current_policy,
            policy.Request(action, principal.role, c.kind, c.payload_bytes),
            usage,
            admitted_before=admitted,
        )
        decisions.append(d)
        admitted += d.allowed
    if current_policy.rate_limited and admitted:
        decisions = await _rate_limit(deps, principal, current_policy, decisions, admitted)
    return Admission(principal, action, candidates, decisions, current_policy.version)


async def prepare(conn: AsyncConnection, principal: Principal) -> policy.Policy:
    """Read the tenant's policy and, when it limits jobs, take the tenant's admission lock now:
    for a caller that locks job rows before `admit` (bulk retry), so that every admission
    takes the tenant lock before any job row (the order a single retry uses)."""
    current_policy = await current(conn, principal.tenant_id)
    if current_policy.max_waiting_jobs is not None:
        await tenants_repo.lock(conn, tenant_id=principal.tenant_id)
    return current_policy


async def _rate_limit(
    deps: Deps,
    principal: Principal,
    current_policy: policy.Policy,
    decisions: list[policy.Decision],
    wanted: int,
) -> list[policy.Decision]:
    rate = current_policy.submit_rate_per_second
    assert rate is not None
    burst = current_policy.submit_burst or max(1, math.ceil(rate))
    key = f"{deps.prefix}:rate:{principal.id}"
    try:
        granted, wait_ms = await deps.redis.eval(_BUCKET, 1, key, rate, burst, wanted)
    except Exception:
        log.warning("rate limiter unavailable: admitting (fail open)", exc_info=True)
        return [
            policy.Decision(True, d.rule, d.reason + "; rate limiter unavailable (fail open)")
            if d.allowed
            else d
            for d in decisions
        ]
    granted = int(granted)
    out: list[policy.Decision] = []
    for d in decisions:
        if d.allowed and granted <= 0:
            d = policy.rate_denied(current_policy, int(wait_ms) / 1000)
        elif d.allowed:
            granted -= 1
        out.append(d)
    return out


async def record(
    conn: AsyncConnection, admission: Admission, job_ids: Sequence[uuid.UUID | None]
) -> None:
    await policy_repo.record(conn, decisions=admission.rows(job_ids))


async def record_bulk(conn: AsyncConnection, admission: Admission) -> None:
    """Record a bulk operation's decisions: one row per admitted job (with its id, as for a
    single retry), and one row per refused kind and rule whose reason counts the jobs (with the
    job's id when it is one), so that refusing a large bulk retry stays a few rows."""
    entries: list[tuple[Candidate, policy.Decision, uuid.UUID | None]] = []
    refused: dict[tuple[str, str], list[tuple[Candidate, policy.Decision]]] = {}
    for c, d in zip(admission.candidates, admission.decisions, strict=True):
        if d.allowed:
            entries.append((c, d, c.job_id))
        else:
            refused.setdefault((c.kind, d.rule), []).append((c, d))
    for group in refused.values():
        c, d = group[0]
        if len(group) == 1:
            entries.append((c, d, c.job_id))
        else:
            entries.append((c, replace(d, reason=f"{d.reason} ({len(group)} jobs)"), None))
    summary = replace(
        admission,
        candidates=[c for c, _, _ in entries],
        decisions=[d for _, d, _ in entries],
    )
    await policy_repo.record(conn, decisions=summary.rows([j for _, _, j in entries]))


def denial(decision: policy.Decision) -> PolicyDenied:
    return PolicyDenied(
        decision.reason, rule=decision.rule, retry_after_seconds=decision.retry_after_seconds
    )


async def decisions_page(
    deps: Deps,
    principal: Principal,
    *,
    decision: str | None,
    action: str | None,
    principal_id: uuid.UUID | None,
    job_kind: str | None,
    first: int,
    before_id: int | None,
) -> tuple[list[DecisionRecord], bool]:
    policy.require(principal, policy.Action.READ_AUDIT)
    flt = policy_repo.DecisionFilter(
        tenant_id=principal.tenant_id,
        decision=decision,
        action=action,
        principal_id=principal_id,
        job_kind=job_kind,
    )
    async with transaction(deps.engine) as conn:
        return await policy_repo.page(conn, flt=flt, first=first, before_id=before_id)
