"""Run-time concurrency limits and throttles: which jobs of a claim batch may start (pure).

A limit has a scope:

| scope      | counts the RUNNING jobs                 | set by                                   |
|------------|-----------------------------------------|------------------------------------------|
| `kind:K`   | of kind K                               | `@job_kind(max_concurrency=, rate=)`     |
| `key:K`    | of kind K with the same concurrency key | `@job_kind(key_concurrency=, key_rate=)` |
| `queue:Q`  | in queue Q                              | `setConcurrencyLimit`                    |
| `tenant:T` | of tenant T                             | the tenant policy's `maxRunningJobs`     |

A `key:K` limit applies to each key separately: jobs are counted per `key:K:<key>`. A job over
any limit stays QUEUED (it is parked, never refused or failed) and starts when a slot frees.
A rate (`10/m`) is a GCRA throttle on the starts of a kind, or of each key: a job over it is
deferred to its slot. See ADR-0022.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from conveyor.domain.errors import FieldError, InvalidInput

_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([smhd])\s*$")
MAX_LIMIT = 1_000_000


@dataclass(frozen=True)
class Rate:
    """`count` starts per `period_seconds`, in bursts of at most `count` (GCRA)."""

    count: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`10/m`, `5/s`, `100/h`, `2/30s` (period: s, m, h, d, with an optional multiple)."""
        found = _RATE.match(text)
        if not found:
            raise ValueError(f"rate {text!r} must read like 10/m (per s, m, h or d)")
        count, multiple, unit = found.groups()
        period = (float(multiple) if multiple else 1.0) * _PERIODS[unit]
        rate = cls(int(count), period)
        if not 1 <= rate.count <= MAX_LIMIT or not 0 < rate.period_seconds <= 366 * 86400:
            raise ValueError(f"rate {text!r} is out of range")
        return rate

    @property
    def interval(self) -> float:
        """Seconds between two starts at the steady rate."""
        return self.period_seconds / self.count

    @property
    def tolerance(self) -> float:
        return (self.count - 1) * self.interval

    def __str__(self) -> str:
        for unit, seconds in _PERIODS.items():
            if math.isclose(self.period_seconds, seconds):
                return f"{self.count}/{unit}"
        return f"{self.count}/{self.period_seconds:g}s"


@dataclass(frozen=True)
class Limit:
    max_running: int | None = None
    rate: Rate | None = None


def kind_scope(kind: str) -> str:
    return f"kind:{kind}"


def key_limit_scope(kind: str) -> str:
    """Where the per-key limit of a kind is set."""
    return f"key:{kind}"


def key_scope(kind: str, key: str) -> str:
    """What a per-key limit counts: one scope per key."""
    return f"key:{kind}:{key}"


def queue_scope(queue: str) -> str:
    return f"queue:{queue}"


def tenant_scope(tenant_id: uuid.UUID | str) -> str:
    return f"tenant:{tenant_id}"


def paused_scope(queue: str) -> str:
    """Jobs parked because their queue is paused."""
    return f"paused:{queue}"


def limit_scope_of(count_scope: str) -> str:
    """The limit that governs a counted scope (`key:K:v` -> `key:K`)."""
    if count_scope.startswith("key:"):
        _, kind, _ = count_scope.split(":", 2)
        return key_limit_scope(kind)
    return count_scope


@dataclass(frozen=True)
class Candidate:
    """A QUEUED job a worker wants to start."""

    id: uuid.UUID
    kind: str
    queue: str
    tenant_id: uuid.UUID
    key: str | None
    priority: int
    created_at: datetime

    def count_scopes(self) -> list[str]:
        scopes = [kind_scope(self.kind), queue_scope(self.queue), tenant_scope(self.tenant_id)]
        if self.key is not None:
            scopes.append(key_scope(self.kind, self.key))
        return scopes


def scopes_to_lock(candidates: Iterable[Candidate], limits: Mapping[str, Limit]) -> list[str]:
    """The counted scopes of these jobs that a limit or rate governs, sorted: the order in
    which their locks are taken (no deadlock between claims)."""
    found = {s for c in candidates for s in c.count_scopes() if limit_scope_of(s) in limits}
    return sorted(found)


@dataclass
class Decision:
    admitted: list[uuid.UUID] = field(default_factory=list)
    #: Held by a full limit: job -> the counted scope that holds it.
    blocked: dict[uuid.UUID, str] = field(default_factory=dict)
    #: Over a rate: job -> (throttled scope, when its slot comes).
    deferred: dict[uuid.UUID, tuple[str, datetime]] = field(default_factory=dict)
    #: New GCRA state of the throttles that admitted jobs.
    tats: dict[str, datetime] = field(default_factory=dict)


def decide(
    candidates: Sequence[Candidate],
    limits: Mapping[str, Limit],
    running: Mapping[str, int],
    tats: Mapping[str, datetime],
    now: datetime,
) -> Decision:
    """Admit jobs in priority order (then oldest first) while every limit of each has a free
    slot and every rate a token; never more than a limit allows, counting the jobs admitted
    before in the same batch. `running`: RUNNING jobs per counted scope, read after the
    scopes' locks were taken."""
    decision = Decision()
    taken: dict[str, int] = {}
    state = dict(tats)
    for c in sorted(candidates, key=lambda c: (c.priority, c.created_at, c.id)):
        blocked: str | None = None
        throttled: list[tuple[str, Rate]] = []
        for scope in c.count_scopes():
            limit = limits.get(limit_scope_of(scope))
            if limit is None:
                continue
            if limit.max_running is not None:
                used = running.get(scope, 0) + taken.get(scope, 0)
                if used >= limit.max_running and blocked is None:
                    blocked = scope
            if limit.rate is not None:
                throttled.append((scope, limit.rate))
        if blocked is not None:
            decision.blocked[c.id] = blocked
            continue
        wait: tuple[str, datetime] | None = None
        for scope, rate in throttled:
            tat = max(state.get(scope, now), now)
            allowed_at = tat - timedelta(seconds=rate.tolerance)
            if allowed_at > now and (wait is None or allowed_at > wait[1]):
                wait = (scope, allowed_at)
        if wait is not None:
            decision.deferred[c.id] = wait
            continue
        decision.admitted.append(c.id)
        for scope in c.count_scopes():
            taken[scope] = taken.get(scope, 0) + 1
        for scope, rate in throttled:
            tat = max(state.get(scope, now), now) + timedelta(seconds=rate.interval)
            state[scope] = tat
            decision.tats[scope] = tat
    return decision


def validate_limit(max_running: int | None, rate: str | None) -> Limit:
    """A limit from the API, or InvalidInput naming every problem."""
    errors: list[FieldError] = []
    parsed: Rate | None = None
    if max_running is not None and not 1 <= max_running <= MAX_LIMIT:
        errors.append(FieldError(("maxRunning",), f"must be between 1 and {MAX_LIMIT}"))
    if rate is not None:
        try:
            parsed = Rate.parse(rate)
        except ValueError as exc:
            errors.append(FieldError(("rate",), str(exc)))
    if errors:
        raise InvalidInput("the limit is invalid", errors)
    return Limit(max_running, parsed)
