"""Schedules (ADR-0022): manage them, sync the ones code declares, and fire them.

A fired job is a normal job: it is validated by `submit.validate`, admitted by the tenant's
policy and stored with its decision and audit rows by `submit.store`, in the transaction that
claims its fire time (`schedule_fires`' primary key) and advances the schedule. Its owner is
the tenant's scheduler key; its idempotency key names the schedule and the fire time.

Size (~530 lines): three use cases over one aggregate (manage it over GraphQL, sync the
ones code declares, fire it), sharing its validation, its summary for the audit log and the
submit request a fire makes.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import metrics
from conveyor.db import schedules as repo
from conveyor.db.engine import transaction
from conveyor.domain import policy
from conveyor.domain import schedules as sched
from conveyor.domain.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    ManagedInCode,
    NameTaken,
    NotFound,
    UserError,
)
from conveyor.domain.models import DEFAULT_TENANT_ID, Job, JobChange, Principal
from conveyor.domain.states import Priority
from conveyor.services import audit, outbox, submit
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

#: Fire times one pass makes per schedule at most (a backlog continues at the next pass).
MAX_FIRES_PER_PASS = 1000


async def _now(conn: AsyncConnection) -> datetime:
    """The database's clock: every schedule decision uses it, never a process's."""
    return (await conn.execute(text("SELECT now()"))).scalar_one()  # type: ignore[no-any-return]


def _check_read(principal: Principal) -> None:
    if principal.token_scope is not None and principal.token_scope != "tenant":
        raise Forbidden("a token for one job cannot read schedules")


def _submit_request(kind: str, spec: sched.ScheduleSpec, key: str | None) -> submit.SubmitRequest:
    o = spec.options
    return submit.SubmitRequest(
        kind=kind,
        payload=spec.input,
        idempotency_key=key,
        priority=Priority(o.priority) if o.priority is not None else Priority.NORMAL,
        max_attempts=o.max_attempts,
        timeout_seconds=o.timeout_seconds,
        backoff_base_seconds=o.backoff_base_seconds,
        backoff_cap_seconds=o.backoff_cap_seconds,
    )


def validate(deps: Deps, kind: str, spec: sched.ScheduleSpec) -> None:
    """InvalidInput naming every problem of a schedule (its input is checked against the
    kind's model now, as a submit would), or UnknownJobKind."""
    errors = sched.validate_spec(spec)
    if spec.options.priority is not None and spec.options.priority not in (0, 1, 2):
        errors.append(FieldError(("priority",), "must be HIGH, NORMAL or LOW"))
    try:
        submit.validate(
            deps,
            _submit_request(kind, spec, None),
            Principal(id=uuid.uuid4(), name="validation"),
        )
    except InvalidInput as exc:
        for f in exc.field_errors:
            path = ("input", *f.path[1:]) if f.path[:1] == ("payload",) else f.path
            errors.append(FieldError(path, f.message))
    if errors:
        raise InvalidInput("the schedule is invalid", errors)


def _summary(s: sched.Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "kind": s.kind,
        "cron": s.spec.cron,
        "everySeconds": s.spec.every_seconds,
        "timezone": s.spec.timezone,
        "input": s.spec.input,
        "paused": s.paused_at is not None,
    }


async def list_schedules(deps: Deps, principal: Principal) -> list[sched.Schedule]:
    _check_read(principal)
    async with transaction(deps.engine) as conn:
        return await repo.list_for(conn, tenant_id=principal.tenant_id)


async def get(deps: Deps, principal: Principal, schedule_id: uuid.UUID) -> sched.Schedule | None:
    _check_read(principal)
    async with transaction(deps.engine) as conn:
        return await repo.get(conn, schedule_id=schedule_id, tenant_id=principal.tenant_id)


async def recent_fires(
    deps: Deps, schedule_ids: list[uuid.UUID], per_schedule: int
) -> dict[uuid.UUID, list[sched.Fire]]:
    async with transaction(deps.engine) as conn:
        return await repo.recent_fires(conn, schedule_ids=schedule_ids, per_schedule=per_schedule)


async def create(
    deps: Deps, principal: Principal, kind: str, spec: sched.ScheduleSpec
) -> sched.Schedule:
    policy.require(principal, policy.Action.MANAGE_SCHEDULES)
    validate(deps, kind, spec)
    async with transaction(deps.engine) as conn:
        now = await _now(conn)
        timing = sched.Timing(spec.cron, spec.every_seconds, spec.timezone, now)
        owner = await repo.scheduler_key(conn, tenant_id=principal.tenant_id)
        created = await repo.insert(
            conn,
            tenant_id=principal.tenant_id,
            kind=kind,
            spec=spec,
            owner_id=owner,
            created_by=principal.name,
            next_fire_at=timing.next_after(now),
            anchor_at=now,
        )
        if created is None:
            raise NameTaken(spec.name)
        await audit.append(
            conn,
            [
                audit.entry(
                    principal, "schedule.create", f"schedule:{created.id}", after=_summary(created)
                )
            ],
        )
    return created


async def _editable(
    conn: AsyncConnection, principal: Principal, schedule_id: uuid.UUID, action: str
) -> sched.Schedule:
    found = await repo.get(conn, schedule_id=schedule_id, tenant_id=principal.tenant_id, lock=True)
    if found is None:
        raise NotFound(str(schedule_id), "schedule")
    if found.source is sched.Source.CODE and action in ("update", "delete"):
        raise ManagedInCode(
            f"schedule {found.name!r} is defined in code (next to {found.kind}): change or "
            f"remove it there; over the API it can be paused, resumed and triggered",
            str(found.id),
        )
    return found


@dataclass(frozen=True)
class Changes:
    """What `updateSchedule` changes (None: unchanged)."""

    name: str | None = None
    input: dict[str, Any] | None = None
    cron: str | None = None
    every_seconds: float | None = None
    timezone: str | None = None
    jitter_seconds: float | None = None
    misfire: sched.Misfire | None = None
    misfire_grace_seconds: float | None = None
    max_catchup: int | None = None
    options: sched.Options | None = None


async def update(
    deps: Deps, principal: Principal, schedule_id: uuid.UUID, changes: Changes
) -> sched.Schedule:
    policy.require(principal, policy.Action.MANAGE_SCHEDULES)
    async with transaction(deps.engine) as conn:
        before = await _editable(conn, principal, schedule_id, "update")
        s = before.spec
        cron, every = s.cron, s.every_seconds
        if changes.cron is not None:
            cron, every = changes.cron, None
        elif changes.every_seconds is not None:
            cron, every = None, changes.every_seconds
        spec = replace(
            s,
            name=changes.name if changes.name is not None else s.name,
            input=changes.input if changes.input is not None else s.input,
            cron=cron,
            every_seconds=every,
            timezone=changes.timezone if changes.timezone is not None else s.timezone,
            jitter_seconds=_or(changes.jitter_seconds, s.jitter_seconds),
            misfire=changes.misfire or s.misfire,
            misfire_grace_seconds=_or(changes.misfire_grace_seconds, s.misfire_grace_seconds),
            max_catchup=_or(changes.max_catchup, s.max_catchup),
            options=changes.options or s.options,
        )
        validate(deps, before.kind, spec)
        now = await _now(conn)
        retimed = (spec.cron, spec.every_seconds, spec.timezone) != (
            s.cron,
            s.every_seconds,
            s.timezone,
        )
        anchor = now if retimed else before.anchor_at
        next_fire = before.next_fire_at
        if retimed:
            next_fire = sched.Timing(
                spec.cron, spec.every_seconds, spec.timezone, anchor
            ).next_after(now)
        after = await repo.replace_definition(
            conn,
            schedule_id=before.id,
            kind=before.kind,
            spec=spec,
            next_fire_at=next_fire,
            anchor_at=anchor,
        )
        if after is None:
            raise NameTaken(spec.name)
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "schedule.update",
                    f"schedule:{after.id}",
                    before=_summary(before),
                    after=_summary(after),
                )
            ],
        )
    return after


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


async def set_paused(
    deps: Deps, principal: Principal, schedule_id: uuid.UUID, paused: bool
) -> sched.Schedule:
    """Pause, or resume: a resumed schedule fires from now on (nothing for the time it was
    paused)."""
    policy.require(principal, policy.Action.MANAGE_SCHEDULES)
    async with transaction(deps.engine) as conn:
        before = await _editable(conn, principal, schedule_id, "pause")
        if (before.paused_at is not None) == paused:
            return before
        now = await _now(conn)
        after = await repo.set_paused(
            conn,
            schedule_id=before.id,
            paused_by=principal.name if paused else None,
            next_fire_at=before.next_fire_at if paused else before.timing.next_after(now),
        )
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "schedule.pause" if paused else "schedule.resume",
                    f"schedule:{after.id}",
                    before=_summary(before),
                    after=_summary(after),
                )
            ],
        )
    return after


async def delete(deps: Deps, principal: Principal, schedule_id: uuid.UUID) -> sched.Schedule:
    """Delete an API-defined schedule (its fire history goes with it; its jobs stay)."""
    policy.require(principal, policy.Action.MANAGE_SCHEDULES)
    async with transaction(deps.engine) as conn:
        before = await _editable(conn, principal, schedule_id, "delete")
        await repo.delete(conn, schedule_id=before.id)
        await audit.append(
            conn,
            [
                audit.entry(
                    principal, "schedule.delete", f"schedule:{before.id}", before=_summary(before)
                )
            ],
        )
    return before


async def trigger(deps: Deps, principal: Principal, schedule_id: uuid.UUID) -> Job:
    """Fire now: one more job, at the database's now() as its fire time, as any fire makes
    it (policy, audit, idempotency). The schedule's next fire time does not move."""
    policy.require(principal, policy.Action.MANAGE_SCHEDULES)
    async with transaction(deps.engine) as conn:
        found = await _editable(conn, principal, schedule_id, "trigger")
        now = await _now(conn)
        made, changes = await _fire(conn, deps, found, [now], now, manual=True)
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "schedule.trigger",
                    f"schedule:{found.id}",
                    after={"fireAt": now.isoformat()},
                )
            ],
        )
    await outbox.announce(deps, changes)
    result = made.get(now)
    if isinstance(result, UserError):
        raise result
    if result is None:  # pragma: no cover - a fire at this very microsecond exists
        raise InvalidInput("the schedule fired at this instant already; try again", [])
    return result


def _scheduler_principal(s: sched.Schedule) -> Principal:
    """Who a fired job is submitted as: the tenant's scheduler key, named for the schedule
    in policy decisions and the audit log."""
    return Principal(
        id=s.owner_id, name=f"schedule:{s.name}", tenant_id=s.tenant_id, role="operator"
    )


async def _fire(
    conn: AsyncConnection,
    deps: Deps,
    s: sched.Schedule,
    fire_ats: list[datetime],
    now: datetime,
    *,
    manual: bool = False,
) -> tuple[dict[datetime, Job | UserError], list[JobChange]]:
    """Make one job per fire time not taken yet (the primary key of `schedule_fires` decides),
    through the submit path, and record what came of each."""
    taken = await repo.insert_fires(conn, schedule_id=s.id, fire_ats=fire_ats, manual=manual)
    if not taken:
        return {}, []
    principal = _scheduler_principal(s)
    made: dict[datetime, Job | UserError] = {}
    items: list[tuple[datetime, Any, int]] = []
    for fire_at in taken:
        req = _submit_request(s.kind, s.spec, f"schedule:{s.id}:{fire_at.isoformat()}")
        try:
            new, size = submit.validate(deps, req, principal)
        except UserError as exc:  # the kind's model changed, or the kind is gone
            made[fire_at] = exc
            continue
        run_at = fire_at + timedelta(seconds=random.uniform(0, s.spec.jitter_seconds))
        new = replace(
            new, run_at=run_at if run_at > now else None, schedule_id=s.id, fire_at=fire_at
        )
        items.append((fire_at, new, size))
    changes: list[JobChange] = []
    if items:
        results, changes = await submit.store(
            conn,
            deps,
            principal,
            [(n, size) for _, n, size in items],
            audit_after={"scheduleId": str(s.id)},
        )
        for (fire_at, _, _), result in zip(items, results, strict=True):
            made[fire_at] = result
    await repo.record_fires(
        conn,
        schedule_id=s.id,
        results=[
            (f, r.id if isinstance(r, Job) else None, None if isinstance(r, Job) else _why(r))
            for f, r in made.items()
        ],
    )
    for f, r in made.items():
        if isinstance(r, Job):
            metrics.SCHEDULER_LAG.observe(max(0.0, (now - f).total_seconds()))
        else:
            metrics.SCHEDULE_FIRE_ERRORS.inc()
            log.warning(
                "a schedule fired but made no job",
                extra={"schedule": s.name, "fire_at": f.isoformat(), "error": _why(r)},
            )
    return made, changes


def _why(error: UserError) -> str:
    if isinstance(error, InvalidInput) and error.field_errors:
        details = "; ".join(f"{'.'.join(f.path)}: {f.message}" for f in error.field_errors)
        return f"{error.code}: {error.message} ({details})"
    return f"{error.code}: {error.message}"


async def fire_due(deps: Deps, *, batch: int = 100) -> int:
    """One scheduler pass: every due schedule's fire times, after its misfire policy, become
    jobs, and the schedule moves on, in one transaction. Returns the jobs made."""
    made_total = 0
    changes: list[JobChange] = []
    async with transaction(deps.engine) as conn:
        now = await _now(conn)
        for s in await repo.due(conn, limit=batch):
            assert s.next_fire_at is not None
            planned = sched.plan(
                s.timing,
                s.next_fire_at,
                now,
                misfire=s.spec.misfire,
                grace_seconds=s.spec.misfire_grace_seconds,
                max_catchup=s.spec.max_catchup,
                max_fires=MAX_FIRES_PER_PASS,
            )
            made, new_changes = await _fire(conn, deps, s, planned.fires, now)
            changes += new_changes
            made_total += sum(isinstance(r, Job) for r in made.values())
            if planned.skipped:
                metrics.SCHEDULE_SKIPPED.inc(planned.skipped)
                log.warning(
                    "missed fire times skipped (misfire policy)",
                    extra={
                        "schedule": s.name,
                        "skipped": planned.skipped,
                        "misfire": s.spec.misfire.value,
                    },
                )
            await repo.advance(
                conn,
                schedule_id=s.id,
                next_fire_at=planned.next_fire_at,
                last_fire_at=planned.fires[-1] if planned.fires else None,
                skipped=planned.skipped,
            )
    await outbox.announce(deps, changes)
    return made_total


#: Code-defined schedules belong to this tenant.
CODE_TENANT = DEFAULT_TENANT_ID
#: Only one process at a time syncs code-defined schedules.
SYNC_LOCK = 0x636F6E76 + 3


async def sync_code(deps: Deps) -> int:
    """Write the schedules this process's kinds declare (ADR-0022): create new ones, update
    those whose definition changed (keeping their paused state; re-timed from now when their
    timing changed), and delete the code-defined schedules of these kinds that the code no
    longer declares. Kinds this process does not know are left alone. Returns the changes."""
    kinds = deps.registry.all()
    declared = {(k.name, s.name): (k, s) for k in kinds for s in k.schedules}
    changed = 0
    async with transaction(deps.engine) as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SYNC_LOCK})
        now = await _now(conn)
        existing = await repo.code_defined(conn, tenant_id=CODE_TENANT)
        by_name = {s.name: s for s in existing}
        others = await repo.definition_hashes(conn, tenant_id=CODE_TENANT)
        owner: uuid.UUID | None = None
        for (kind_name, name), (_, declared_spec) in declared.items():
            spec = declared_spec
            digest = spec.definition_hash(kind_name)
            current = by_name.get(name)
            if current is None and name in others:
                log.warning(
                    "a schedule declared in code has the name of an API-defined one: skipped",
                    extra={"schedule": name, "kind": kind_name},
                )
                continue
            timing = sched.Timing(spec.cron, spec.every_seconds, spec.timezone, now)
            if current is None:
                owner = owner or await repo.scheduler_key(conn, tenant_id=CODE_TENANT)
                await repo.insert(
                    conn,
                    tenant_id=CODE_TENANT,
                    kind=kind_name,
                    spec=spec,
                    owner_id=owner,
                    created_by="code",
                    next_fire_at=timing.next_after(now),
                    anchor_at=now,
                    source=sched.Source.CODE,
                    definition_hash=digest,
                )
                changed += 1
            elif others[name][1] != digest:
                old = current.spec
                retimed = (spec.cron, spec.every_seconds, spec.timezone) != (
                    old.cron,
                    old.every_seconds,
                    old.timezone,
                )
                await repo.replace_definition(
                    conn,
                    schedule_id=current.id,
                    kind=kind_name,
                    spec=spec,
                    next_fire_at=timing.next_after(now) if retimed else current.next_fire_at,
                    anchor_at=now if retimed else current.anchor_at,
                    definition_hash=digest,
                )
                changed += 1
        known = {k.name for k in kinds}
        for s in existing:
            if s.kind in known and (s.kind, s.name) not in declared:
                await repo.delete(conn, schedule_id=s.id)
                changed += 1
        if changed:
            await audit.append(
                conn,
                [
                    audit.entry(
                        None,
                        "schedule.sync",
                        "schedules:code",
                        after={"changes": changed},
                        tenant_id=CODE_TENANT,
                        actor_name="code",
                    )
                ],
            )
    if changed:
        log.info("synced the schedules declared in code", extra={"changes": changed})
    return changed
