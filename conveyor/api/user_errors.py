"""Expected errors are data: the GraphQL shape of every `domain.errors.UserError`, converted
in one place (`user_error`). Each implements `UserError { message code }`."""

from __future__ import annotations

import strawberry

from conveyor.domain import errors
from conveyor.domain import states as st


@strawberry.interface(description="An expected error: shown to the user, nothing was changed.")
class UserError:
    message: str
    code: str


@strawberry.type
class FieldError:
    path: list[str]
    message: str


@strawberry.type
class InvalidInput(UserError):
    field_errors: list[FieldError]


@strawberry.type
class UnknownJobKind(UserError):
    kind: str


@strawberry.type
class UnknownWorkflow(UserError):
    workflow: str


@strawberry.type
class NotFound(UserError):
    id: strawberry.ID


@strawberry.type
class InvalidState(UserError):
    status: st.JobStatus


@strawberry.type
class Conflict(UserError):
    existing_job_id: strawberry.ID


@strawberry.type(
    description="The admission policy refused the request; the decision is recorded "
    "(`policyDecisions`) with this rule."
)
class PolicyDenied(UserError):
    rule: str
    retry_after_seconds: float | None


@strawberry.type(description="A schedule of that name exists in the tenant.")
class NameTaken(UserError):
    name: str


@strawberry.type(
    description="The schedule is defined in code, which owns its definition: change or remove "
    "it there (it can still be paused, resumed and triggered)."
)
class ManagedInCode(UserError):
    id: strawberry.ID


def user_error(exc: errors.UserError) -> UserError:
    """The GraphQL shape of an expected domain error."""
    if isinstance(exc, errors.InvalidInput):
        return InvalidInput(
            message=exc.message,
            code=exc.code,
            field_errors=[
                FieldError(path=list(f.path), message=f.message) for f in exc.field_errors
            ],
        )
    if isinstance(exc, errors.UnknownJobKind):
        return UnknownJobKind(message=exc.message, code=exc.code, kind=exc.kind)
    if isinstance(exc, errors.UnknownWorkflow):
        return UnknownWorkflow(message=exc.message, code=exc.code, workflow=exc.workflow)
    if isinstance(exc, errors.NotFound):
        return NotFound(message=exc.message, code=exc.code, id=strawberry.ID(exc.id))
    if isinstance(exc, errors.InvalidState):
        return InvalidState(message=exc.message, code=exc.code, status=st.JobStatus(exc.status))
    if isinstance(exc, errors.Conflict):
        return Conflict(
            message=exc.message, code=exc.code, existing_job_id=strawberry.ID(exc.existing_job_id)
        )
    if isinstance(exc, errors.PolicyDenied):
        return PolicyDenied(
            message=exc.message,
            code=exc.code,
            rule=exc.rule,
            retry_after_seconds=exc.retry_after_seconds,
        )
    if isinstance(exc, errors.NameTaken):
        return NameTaken(message=exc.message, code=exc.code, name=exc.name)
    if isinstance(exc, errors.ManagedInCode):
        return ManagedInCode(message=exc.message, code=exc.code, id=strawberry.ID(exc.id))
    raise TypeError(f"no GraphQL type for {type(exc).__name__}")
