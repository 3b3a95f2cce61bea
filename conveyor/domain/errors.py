"""The one error hierarchy of Conveyor. Nothing below `api/` raises HTTP or GraphQL errors.

ConveyorError
├── UserError                   expected, shown to the caller as data (GraphQL unions)
│   ├── InvalidInput            payload or arguments fail validation (field errors)
│   ├── UnknownJobKind          no job kind by that name
│   ├── NotFound                no such job visible to the caller
│   ├── InvalidState            the job's status does not allow the action
│   ├── UnknownWorkflow         no workflow by that name
│   ├── Conflict                idempotency key reused with a different payload
│   ├── PolicyDenied            the admission policy refused the request (recorded)
│   ├── NameTaken               a schedule of that name exists in the tenant
│   └── ManagedInCode           a schedule defined in code cannot be changed over the API
├── Unauthenticated             missing, unknown, revoked or expired API key or token
├── Forbidden                   authenticated, but the role or token scope does not allow it
├── ServiceUnavailable          PostgreSQL or Redis cannot be reached right now
│   └── SlowConsumer            a live subscriber fell too far behind
├── TooManySubscriptions        the per-process subscription cap is reached
├── JobKindError                a job module does not import, or declares a kind wrongly or twice
│   └── InvalidWorkflow         a workflow definition is wrong (raised at import or load)
├── JobError                    raised by handlers
│   └── PermanentError          do not retry: fail the job at once
└── Snooze                      raised by `ctx.snooze`: run again later, the attempt not counted
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConveyorError(Exception):
    code = "INTERNAL"


@dataclass(frozen=True)
class FieldError:
    path: tuple[str, ...]
    message: str


class UserError(ConveyorError):
    code = "USER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(UserError):
    code = "INVALID_INPUT"

    def __init__(self, message: str, field_errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.field_errors = field_errors or []


class UnknownJobKind(UserError):
    code = "UNKNOWN_JOB_KIND"

    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown job kind {kind!r}")
        self.kind = kind


class UnknownWorkflow(UserError):
    code = "UNKNOWN_WORKFLOW"

    def __init__(self, workflow: str) -> None:
        super().__init__(f"unknown workflow {workflow!r}")
        self.workflow = workflow


class NotFound(UserError):
    code = "NOT_FOUND"

    def __init__(self, id: str, what: str = "job") -> None:
        super().__init__(f"no {what} {id!r}")
        self.id = id


class InvalidState(UserError):
    code = "INVALID_STATE"

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class Conflict(UserError):
    code = "CONFLICT"

    def __init__(self, message: str, existing_job_id: str) -> None:
        super().__init__(message)
        self.existing_job_id = existing_job_id


class PolicyDenied(UserError):
    """The admission policy said no; the decision row names the rule."""

    code = "POLICY_DENIED"

    def __init__(
        self, message: str, *, rule: str, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.retry_after_seconds = retry_after_seconds


class NameTaken(UserError):
    code = "NAME_TAKEN"

    def __init__(self, name: str) -> None:
        super().__init__(f"a schedule named {name!r} exists already")
        self.name = name


class ManagedInCode(UserError):
    """Code owns the definition of a code-defined schedule (ADR-0022)."""

    code = "MANAGED_IN_CODE"

    def __init__(self, message: str, id: str) -> None:
        super().__init__(message)
        self.id = id


class Unauthenticated(ConveyorError):
    code = "UNAUTHENTICATED"


class Forbidden(ConveyorError):
    """The caller is known but its role (or token scope) does not allow the action."""

    code = "FORBIDDEN"


class ServiceUnavailable(ConveyorError):
    code = "SERVICE_UNAVAILABLE"


class SlowConsumer(ServiceUnavailable):
    code = "SLOW_CONSUMER"


class TooManySubscriptions(ConveyorError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class JobKindError(ConveyorError, ValueError):
    """User code that cannot be run: a job module that does not import, a kind with a bad name,
    an input that is not a pydantic model, a handler that is not async, a kind declared twice.
    Found at start-up (`conveyor.kinds.load`), never while jobs run; the message is one line."""

    code = "JOB_KIND_ERROR"


class JobError(ConveyorError):
    """Base for errors a handler raises on purpose; retried like any other failure."""

    code = "JOB_ERROR"


@dataclass
class PermanentError(JobError):
    """Raise from a handler to fail the job now, without further attempts."""

    message: str
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


class Snooze(ConveyorError):
    """Raised by `ctx.snooze(seconds)`: ends the attempt without counting it; the job runs
    again after `seconds` (Oban's and River's snooze). Not a JobError: nothing failed."""

    code = "SNOOZE"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"snoozed for {seconds:g} s")
        self.seconds = seconds


class InvalidWorkflow(JobKindError):
    """A workflow definition that cannot run (a cycle, an unknown kind or step, a step not
    connected to the others): raised when its module is imported, naming the workflow."""

    code = "INVALID_WORKFLOW"
