"""What clients see of errors: expected ones keep their message and get `extensions.code`;
anything unexpected becomes "Internal server error" with a request id that the log carries."""

from __future__ import annotations

import logging
import uuid

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from conveyor.domain.errors import (
    Forbidden,
    InvalidInput,
    ServiceUnavailable,
    TooManySubscriptions,
    Unauthenticated,
    UserError,
)
from conveyor.services import audit

log = logging.getLogger(__name__)

#: Domain errors whose message is meant for the caller.
_PUBLIC = (UserError, Unauthenticated, Forbidden, ServiceUnavailable, TooManySubscriptions)


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={**(error.extensions or {}), **extensions},
    )


def public(error: GraphQLError) -> GraphQLError:
    """The error as a client may see it."""
    original = error.original_error
    # Variables that do not coerce (`Variable '$x' got invalid value ...`): pre-execution,
    # no path, the caller's mistake. graphql-core keeps the scalar's exception as original.
    is_coercion = error.path is None and error.message.startswith("Variable '$")
    if original is None or is_coercion:
        # Syntax and validation errors: the caller's mistake, readable as is.
        if error.extensions and "code" in error.extensions:
            return error
        return _rebuild(error, error.message, {"code": "GRAPHQL_VALIDATION_FAILED"})
    if isinstance(original, InvalidInput) and original.field_errors:
        details = [{"path": list(f.path), "message": f.message} for f in original.field_errors]
        return _rebuild(error, original.message, {"code": original.code, "fieldErrors": details})
    if isinstance(original, _PUBLIC):
        return _rebuild(error, str(original), {"code": original.code})
    request_id = audit.REQUEST.get().request_id or uuid.uuid4().hex
    log.error(
        "unexpected error in a GraphQL operation",
        exc_info=original,
        extra={"request_id": request_id, "path": list(error.path or [])},
    )
    return _rebuild(
        error, "Internal server error", {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    )


class ErrorPolicy(MaskErrors):
    """Applies `public` to every error of every operation."""

    def __init__(self) -> None:
        super().__init__()

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [public(e) for e in errors]
