"""Run-time limits and paused queues, as operators manage them (ADR-0022).

Limits live in PostgreSQL (`concurrency_limits`) and every claim reads them: a change is in
force for the next claim, in every worker, without a restart. Kinds declare theirs in code
(`@job_kind(max_concurrency=..., rate=..., key_concurrency=...)`), written at start-up; a
limit set over the API wins over the code's until it is cleared (then the code's is back at
the next start, or at once when `clearConcurrencyLimit` finds one declared here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conveyor.db import limits as repo
from conveyor.db.engine import transaction
from conveyor.domain import limits, policy
from conveyor.domain.errors import FieldError, Forbidden, InvalidInput
from conveyor.domain.models import Principal
from conveyor.kinds.registry import QUEUE_NAME
from conveyor.services import audit
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)


async def sync_code(deps: Deps) -> None:
    """Write the limits this process's kinds declare; an API-set limit is left alone. A kind
    that no longer declares one loses the code's (not the API's)."""
    async with transaction(deps.engine) as conn:
        for kind in deps.registry.all():
            for scope, limit in (
                (limits.kind_scope(kind.name), kind.limit),
                (limits.key_limit_scope(kind.name), kind.key_limit),
            ):
                await repo.set_limit(
                    conn, scope=scope, limit=limit, source="code", by="code", unless_source="api"
                )


@dataclass(frozen=True)
class LimitView:
    scope: str
    limit: limits.Limit
    source: str
    updated_by: str | None
    updated_at: datetime
    #: RUNNING jobs in the scope now (per-key limits: the busiest key's).
    running: int | None
    #: Jobs parked on this limit now.
    waiting: int


def _scope(kind: str | None, queue: str | None, per_key_of: str | None) -> str:
    given = [(n, v) for n, v in (("kind", kind), ("queue", queue), ("perKeyOf", per_key_of)) if v]
    if len(given) != 1:
        raise InvalidInput(
            "name one scope", [FieldError(("scope",), "give exactly one of kind, queue, perKeyOf")]
        )
    name, value = given[0]
    assert value is not None
    if name == "queue":
        if not QUEUE_NAME.match(value):
            raise InvalidInput("invalid queue", [FieldError(("queue",), "not a queue name")])
        return limits.queue_scope(value)
    return limits.kind_scope(value) if name == "kind" else limits.key_limit_scope(value)


async def list_limits(deps: Deps, principal: Principal) -> list[LimitView]:
    """Every kind and queue limit, with what runs and waits under it (tenant limits: only
    the caller's)."""
    if principal.token_scope is not None and principal.token_scope != "tenant":
        raise Forbidden("a token for one job cannot read limits")
    async with transaction(deps.engine) as conn:
        rows = await repo.get_limits(conn)
        rows = [
            r
            for r in rows
            if not r["scope"].startswith("tenant:")
            or r["scope"] == limits.tenant_scope(principal.tenant_id)
        ]
        plain = [r["scope"] for r in rows if not r["scope"].startswith("key:")]
        running = await repo.running_per_scope(conn, scopes=plain)
        parked = await repo.parked_scopes(conn, limit=100_000)
    views = []
    for r in rows:
        scope = r["scope"]
        if scope.startswith("key:"):
            prefix = scope + ":"
            waiting = sum(n for s, n in parked.items() if s.startswith(prefix))
            busiest = None
        else:
            waiting = parked.get(scope, 0)
            busiest = running.get(scope, 0)
        views.append(
            LimitView(
                scope,
                repo.limit_of(r),
                r["source"],
                r["updated_by"],
                r["updated_at"],
                busiest,
                waiting,
            )
        )
    return views


async def set_limit(
    deps: Deps,
    principal: Principal,
    *,
    kind: str | None,
    queue: str | None,
    per_key_of: str | None,
    max_running: int | None,
    rate: str | None,
) -> LimitView:
    """Set (or, with neither max nor rate, remove) a kind's, a queue's or a kind's per-key
    limit. Deployment-wide: admins."""
    policy.require(principal, policy.Action.MANAGE_LIMITS)
    scope = _scope(kind, queue, per_key_of)
    for name in (kind, per_key_of):
        if name is not None and deps.registry.get(name) is None:
            raise InvalidInput("unknown kind", [FieldError(("kind",), f"no job kind {name!r}")])
    limit = limits.validate_limit(max_running, rate)
    async with transaction(deps.engine) as conn:
        before = await repo.get_limits(conn, scopes=[scope])
        if limit.max_running is None and limit.rate is None:
            await repo.set_limit(conn, scope=scope, limit=None, source="api", by=principal.name)
            restored = _declared(deps, scope)
            if restored is not None:
                await repo.set_limit(conn, scope=scope, limit=restored, source="code", by="code")
        else:
            await repo.set_limit(conn, scope=scope, limit=limit, source="api", by=principal.name)
        after = await repo.get_limits(conn, scopes=[scope])
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "limit.set",
                    f"limit:{scope}",
                    before=_doc(before[0]) if before else None,
                    after=_doc(after[0]) if after else None,
                )
            ],
        )
    views = await list_limits(deps, principal)
    found = next((v for v in views if v.scope == scope), None)
    return found or LimitView(
        scope, limits.Limit(), "none", principal.name, datetime.now(UTC), 0, 0
    )


def _declared(deps: Deps, scope: str) -> limits.Limit | None:
    for kind in deps.registry.all():
        if scope == limits.kind_scope(kind.name):
            return kind.limit
        if scope == limits.key_limit_scope(kind.name):
            return kind.key_limit
    return None


def _doc(r: Mapping[str, Any]) -> dict[str, object]:
    return {
        "maxRunning": r["max_running"],
        "rate": str(repo.limit_of(r).rate) if r["rate_count"] is not None else None,
        "source": r["source"],
    }


async def set_queue_paused(deps: Deps, principal: Principal, queue: str, paused: bool) -> bool:
    """Pause (nothing new starts; running jobs finish; submits are still accepted) or resume
    a queue (its parked jobs are sent again, oldest first). Returns whether it changed."""
    policy.require(principal, policy.Action.MANAGE_QUEUES)
    if not QUEUE_NAME.match(queue):
        raise InvalidInput("invalid queue", [FieldError(("queue",), "not a queue name")])
    async with transaction(deps.engine) as conn:
        if paused:
            changed = await repo.pause_queue(conn, queue=queue, by=principal.name)
        else:
            changed = await repo.resume_queue(conn, queue=queue)
        if changed:
            await audit.append(
                conn,
                [
                    audit.entry(
                        principal,
                        "queue.pause" if paused else "queue.resume",
                        f"queue:{queue}",
                        after={"paused": paused},
                    )
                ],
            )
    if changed and not paused:
        # Wake every job parked while it was paused, a batch at a time; the parked-jobs
        # sweep finishes the job if this process stops half-way.
        while True:
            async with transaction(deps.engine) as conn:
                woken = await repo.wake_all(conn, scope=limits.paused_scope(queue))
            if woken:
                await deps.dispatcher.send(woken)
            if len(woken) < 1000:
                break
    return changed


async def paused_queues(deps: Deps) -> dict[str, tuple[datetime, str | None]]:
    async with transaction(deps.engine) as conn:
        return await repo.paused_queues(conn)
