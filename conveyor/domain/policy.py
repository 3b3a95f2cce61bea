"""Who may do what: roles, read/write scopes, and the admission policy (pure: no I/O).

Roles, within one tenant:

| role      | read jobs   | submit | cancel/retry | keys, tokens, policy, audit |
|-----------|-------------|--------|--------------|-----------------------------|
| admin     | the tenant  | yes    | any job      | yes                         |
| operator  | the tenant  | yes    | any job      | no                          |
| submitter | its own     | yes    | its own      | no                          |
| viewer    | the tenant  | no     | no           | no                          |

A superuser (platform level, created from the CLI) is an admin of its own tenant that may also
manage tenants. A token is read-only: its scope is one job or one tenant.

The admission policy is data (a versioned JSON document per tenant, stored in PostgreSQL):
`evaluate` applies its rules in a fixed order and names the rule that decided.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.errors import FieldError, Forbidden, InvalidInput
from conveyor.domain.models import DEFAULT_TENANT_ID, Principal


class Role(enum.StrEnum):
    ADMIN = "admin"  #: everything in its tenant: keys, tokens, policy, audit
    OPERATOR = "operator"  #: submit; cancel and retry any job of its tenant
    SUBMITTER = "submitter"  #: submit; see, cancel and retry its own jobs
    VIEWER = "viewer"  #: read-only


class Action(enum.StrEnum):
    SUBMIT = "submit"
    RETRY = "retry"
    CANCEL = "cancel"
    MANAGE_KEYS = "manage_keys"
    MANAGE_POLICY = "manage_policy"
    READ_AUDIT = "read_audit"
    MINT_TENANT_TOKEN = "mint_tenant_token"
    MANAGE_SCHEDULES = "manage_schedules"
    #: Pause and resume queues (deployment-wide: the workers serve every tenant).
    MANAGE_QUEUES = "manage_queues"
    #: Concurrency limits of kinds and queues (deployment-wide).
    MANAGE_LIMITS = "manage_limits"


_ALLOWED: dict[Action, frozenset[Role]] = {
    Action.SUBMIT: frozenset({Role.ADMIN, Role.OPERATOR, Role.SUBMITTER}),
    Action.RETRY: frozenset({Role.ADMIN, Role.OPERATOR, Role.SUBMITTER}),
    Action.CANCEL: frozenset({Role.ADMIN, Role.OPERATOR, Role.SUBMITTER}),
    Action.MANAGE_KEYS: frozenset({Role.ADMIN}),
    Action.MANAGE_POLICY: frozenset({Role.ADMIN}),
    Action.READ_AUDIT: frozenset({Role.ADMIN}),
    Action.MINT_TENANT_TOKEN: frozenset({Role.ADMIN}),
    Action.MANAGE_SCHEDULES: frozenset({Role.ADMIN, Role.OPERATOR}),
    Action.MANAGE_QUEUES: frozenset({Role.ADMIN, Role.OPERATOR}),
    Action.MANAGE_LIMITS: frozenset({Role.ADMIN}),
}


#: Actions whose effect reaches every tenant (queues and kinds are shared by all of them, and so
#: are the workers): only the deployment's own tenant (`default`) or a superuser may take them,
#: so that one tenant's admin cannot stop or slow another tenant's jobs.
DEPLOYMENT_WIDE = frozenset({Action.MANAGE_QUEUES, Action.MANAGE_LIMITS})


def require(principal: Principal, action: Action) -> None:
    """Raise `Forbidden` unless the principal's role allows `action` (tokens allow none)."""
    what = action.value.replace("_", " ")
    if principal.token_scope is not None:
        raise Forbidden(f"a read-only token cannot {what}")
    if Role(principal.role) not in _ALLOWED[action]:
        raise Forbidden(f"role {principal.role} may not {what}")
    if (
        action in DEPLOYMENT_WIDE
        and not principal.is_superuser
        and principal.tenant_id != DEFAULT_TENANT_ID
    ):
        raise Forbidden(
            f"only the deployment's own tenant (default) or a superuser may {what}: "
            "it affects every tenant"
        )


def require_superuser(principal: Principal) -> None:
    if principal.token_scope is not None or not principal.is_superuser:
        raise Forbidden("only a superuser may manage tenants")


@dataclass(frozen=True)
class Scope:
    """Which jobs a principal may see or change: always one tenant, maybe narrower."""

    tenant_id: uuid.UUID
    #: Only jobs this key submitted (submitters).
    owner_id: uuid.UUID | None = None
    #: Only this job (job tokens).
    job_id: uuid.UUID | None = None

    def allows(self, tenant_id: uuid.UUID, owner_id: uuid.UUID, job_id: uuid.UUID) -> bool:
        return (
            tenant_id == self.tenant_id
            and (self.owner_id is None or owner_id == self.owner_id)
            and (self.job_id is None or job_id == self.job_id)
        )


def read_scope(principal: Principal) -> Scope:
    scope = principal.token_scope
    if scope is not None:
        if scope.startswith("job:"):
            return Scope(principal.tenant_id, job_id=uuid.UUID(scope[4:]))
        return Scope(principal.tenant_id)
    if principal.role == Role.SUBMITTER:
        return Scope(principal.tenant_id, owner_id=principal.id)
    return Scope(principal.tenant_id)


def write_scope(principal: Principal, action: Action) -> Scope:
    """The jobs `principal` may cancel or retry (raises `Forbidden` for viewers and tokens)."""
    require(principal, action)
    return read_scope(principal)


# The admission policy.

RULE_ALLOW = "allow"
RULE_READ_ONLY = "role.readOnly"
RULE_ROLE_KINDS = "role.kinds"
RULE_PAYLOAD = "payload.maxBytes"
RULE_WAITING = "tenant.maxWaitingJobs"
#: No longer an admission rule (ADR-0022): kept for decisions recorded before.
RULE_RUNNING = "tenant.maxRunningJobs"
RULE_RATE = "principal.submitRate"


@dataclass(frozen=True)
class Policy:
    """One version of a tenant's admission policy. JSON form: `to_json` / `from_json`."""

    #: Per role, the job kinds (glob patterns, e.g. `demo.*`) it may submit and retry.
    role_kinds: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            Role.ADMIN.value: ("*",),
            Role.OPERATOR.value: ("*",),
            Role.SUBMITTER.value: ("*",),
            Role.VIEWER.value: (),
        }
    )
    #: QUEUED + SCHEDULED + RETRYING jobs the tenant may have at once (None: no limit).
    max_waiting_jobs: int | None = None
    #: At most this many of the tenant's jobs RUNNING at once, across all workers: more wait
    #: QUEUED until a slot frees (a run-time limit since ADR-0022; never a refusal).
    max_running_jobs: int | None = None
    #: Largest payload, as compact JSON bytes.
    max_payload_bytes: int | None = 256 * 1024
    #: Token bucket per principal: jobs per second refilled, and the bucket size.
    submit_rate_per_second: float | None = None
    submit_burst: int | None = None
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "roleKinds": {r: list(k) for r, k in sorted(self.role_kinds.items())},
            "maxWaitingJobs": self.max_waiting_jobs,
            "maxRunningJobs": self.max_running_jobs,
            "maxPayloadBytes": self.max_payload_bytes,
            "submitRatePerSecond": self.submit_rate_per_second,
            "submitBurst": self.submit_burst,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], version: int = 0) -> Policy:
        """Validate a stored or submitted document; `InvalidInput` lists every problem."""
        errors: list[FieldError] = []
        known = set(cls().to_json())
        for key in doc:
            if key not in known:
                errors.append(FieldError((key,), "unknown policy field"))
        role_kinds: dict[str, tuple[str, ...]] = dict(cls().role_kinds)
        raw = doc.get("roleKinds", {})
        if not isinstance(raw, Mapping):
            errors.append(FieldError(("roleKinds",), "must map a role to a list of kinds"))
            raw = {}
        for role, kinds in raw.items():
            if role not in Role.__members__.values():
                errors.append(FieldError(("roleKinds", str(role)), "unknown role"))
            elif not isinstance(kinds, list) or not all(
                isinstance(k, str) and 0 < len(k) <= 200 for k in kinds
            ):
                errors.append(FieldError(("roleKinds", role), "must be a list of kind patterns"))
            else:
                role_kinds[role] = tuple(kinds)

        def limit(name: str, *, number: type = int) -> Any:
            value = doc.get(name, getattr(cls(), _SNAKE[name]))
            if value is None:
                return None
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if number is int:
                ok = ok and float(value).is_integer()
            if not ok or not math.isfinite(value) or value <= 0:
                errors.append(FieldError((name,), "must be a positive number or null"))
                return None
            return number(value)

        policy = cls(
            role_kinds=role_kinds,
            max_waiting_jobs=limit("maxWaitingJobs"),
            max_running_jobs=limit("maxRunningJobs"),
            max_payload_bytes=limit("maxPayloadBytes"),
            submit_rate_per_second=limit("submitRatePerSecond", number=float),
            submit_burst=limit("submitBurst"),
            version=version,
        )
        if errors:
            raise InvalidInput("the policy is invalid", errors)
        return policy

    def may_run(self, role: str, kind: str) -> bool:
        return any(fnmatch.fnmatchcase(kind, p) for p in self.role_kinds.get(role, ()))

    @property
    def rate_limited(self) -> bool:
        return self.submit_rate_per_second is not None


_SNAKE = {
    "maxWaitingJobs": "max_waiting_jobs",
    "maxRunningJobs": "max_running_jobs",
    "maxPayloadBytes": "max_payload_bytes",
    "submitRatePerSecond": "submit_rate_per_second",
    "submitBurst": "submit_burst",
}


@dataclass(frozen=True)
class Request:
    """One admission question: may `role` do `action` on a job of `kind`?"""

    action: str
    role: str
    kind: str
    payload_bytes: int


@dataclass(frozen=True)
class Usage:
    """The tenant's current load, counted in the deciding transaction."""

    waiting: int = 0
    running: int = 0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str
    retry_after_seconds: float | None = None


def evaluate(policy: Policy, req: Request, usage: Usage, *, admitted_before: int = 0) -> Decision:
    """Apply the rules in order; the first that refuses decides. The rate limit is applied by
    the caller afterwards (it consumes tokens, so only requests that pass everything else pay).

    `admitted_before`: jobs of the same batch already admitted (they count as waiting).
    """
    action = Action(req.action)
    if Role(req.role) not in _ALLOWED.get(action, frozenset()):
        return Decision(False, RULE_READ_ONLY, f"role {req.role} may not {req.action} jobs")
    if not policy.may_run(req.role, req.kind):
        return Decision(False, RULE_ROLE_KINDS, f"role {req.role} may not {req.action} {req.kind}")
    if policy.max_payload_bytes is not None and req.payload_bytes > policy.max_payload_bytes:
        return Decision(
            False,
            RULE_PAYLOAD,
            f"payload is {req.payload_bytes} bytes; the limit is {policy.max_payload_bytes}",
        )
    waiting = usage.waiting + admitted_before
    if policy.max_waiting_jobs is not None and waiting + 1 > policy.max_waiting_jobs:
        return Decision(
            False,
            RULE_WAITING,
            f"the tenant has {waiting} waiting jobs; the limit is {policy.max_waiting_jobs}",
            retry_after_seconds=5.0,
        )
    # maxRunningJobs is enforced when jobs start, not here (ADR-0022 amends ADR-0014).
    return Decision(True, RULE_ALLOW, "every rule passed")


def rate_denied(policy: Policy, retry_after: float) -> Decision:
    return Decision(
        False,
        RULE_RATE,
        f"submit rate over {policy.submit_rate_per_second:g}/s for this key",
        retry_after_seconds=round(max(retry_after, 0.001), 3),
    )
