"""What clients see of errors, and what the log says of them: every error of every operation
passes through `public` once.

Expected ones (the caller's mistake or a refusal: syntax, validation, variables that do not
coerce, domain errors) keep their message, get `extensions.code`, and are logged once at INFO
(WARNING when the server is the cause: an outage, a full process), with the request id and no
traceback. Anything unexpected becomes "Internal server error" with a request id, logged at
ERROR with its traceback.
"""

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
from conveyor.domain.storable import shown
from conveyor.services import audit

log = logging.getLogger(__name__)

#: Domain errors whose message is meant for the caller.
_PUBLIC = (UserError, Unauthenticated, Forbidden, ServiceUnavailable, TooManySubscriptions)
#: Public errors that say the server, not the caller, could not serve the request.
_SERVER_SIDE = (ServiceUnavailable, TooManySubscriptions)


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


def _expected(error: GraphQLError, code: str, level: int = logging.INFO) -> None:
    log.log(
        level,
        "GraphQL request refused: %s",
        error.message,
        extra={
            "request_id": audit.REQUEST.get().request_id,
            "code": code,
            "path": list(error.path or []),
        },
    )


def public(error: GraphQLError) -> GraphQLError:
    """The error as a client may see it (and logged, once)."""
    original = error.original_error
    # Variables that do not coerce (`Variable '$x' got invalid value ...`): pre-execution,
    # no path, the caller's mistake. graphql-core keeps the scalar's exception as original.
    is_coercion = error.path is None and error.message.startswith("Variable '$")
    if original is None or is_coercion:
        # Syntax and validation errors: the caller's mistake, readable as is (graphql-core
        # quotes the offending value: NUL and lone surrogates are spelled out to be sendable).
        code = str((error.extensions or {}).get("code") or "GRAPHQL_VALIDATION_FAILED")
        message = shown(error.message)
        if message != error.message or "code" not in (error.extensions or {}):
            error = _rebuild(error, message, {"code": code})
        _expected(error, code)
        return error
    if isinstance(original, InvalidInput) and original.field_errors:
        details = [{"path": list(f.path), "message": f.message} for f in original.field_errors]
        error = _rebuild(error, original.message, {"code": original.code, "fieldErrors": details})
        _expected(error, original.code)
        return error
    if isinstance(original, _PUBLIC):
        error = _rebuild(error, str(original), {"code": original.code})
        level = logging.WARNING if isinstance(original, _SERVER_SIDE) else logging.INFO
        _expected(error, original.code, level)
        return error
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
