"""GraphQL over HTTP, as the GraphQL-over-HTTP specification has it (strawberry's own view
always answers `application/json` 200).

- `Accept`: `application/graphql-response+json` is served when asked for; `application/json`
  (or `*/*`, or no Accept) gets the legacy `application/json`; anything else is 406.
- A request error (unparsable JSON, bad parameters, a document that fails to parse or validate,
  variables that do not coerce, an unknown operation) is 400 under graphql-response+json, with
  no `data` entry; under application/json it is 200, as the spec advises for legacy clients
  (except for bodies that are not GraphQL requests at all: 400).
- POST takes `application/json` only: `text/plain`, forms and multipart (what a cross-site
  page can send without a CORS preflight) are 415. GET runs queries only: a mutation is 405.
- A JSON array is a batch of up to `GRAPHQL_MAX_BATCH` operations, run one after another
  within one time limit and answered with an array of results in order (200; each result is
  the body that operation would have had alone). Each operation is parsed, validated and
  costed on its own, and each mutation passes admission and rate limits on its own.
- Persisted operations (APQ, trusted documents: `conveyor.api.persisted`) resolve the document.
- An execution time limit (504), and the body size limit of `main.BodyLimit` (413).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from conveyor import tracing
from conveyor.api.persisted import Persisted, PersistedQueryError, Resolved
from conveyor.services import audit

log = logging.getLogger(__name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class RequestError(Exception):
    """The HTTP request is not an acceptable GraphQL request: answered with `status`."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


def negotiate(accept: str | None) -> str:
    """The response media type for an `Accept` header (RequestError 406 when none fits)."""
    if not accept or not accept.strip():
        return JSON
    offered: set[str] = set()
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            offered.add(media.lower())
    if GRAPHQL_RESPONSE in offered:
        return GRAPHQL_RESPONSE
    if offered & {JSON, "*/*", "application/*"}:
        return JSON
    raise RequestError(
        406, f"cannot answer in {accept!r}: accept {GRAPHQL_RESPONSE} or {JSON}", "NOT_ACCEPTABLE"
    )


_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def parse_json(text: str | bytes) -> Any:
    """JSON as the stdlib reads it, read by orjson when orjson can (several times faster).
    orjson refuses what the stdlib accepts in a few corners (NaN, lone surrogates, nesting
    past 1,024 levels, other encodings than UTF-8) and reads integers beyond 64 bits as floats:
    a body with a run of 19 digits, and any orjson refuses, goes to the stdlib, so every
    request is read as it always was."""
    long_number = _LONG_NUMBER_BYTES if isinstance(text, bytes) else _LONG_NUMBER
    if long_number.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def loads(text: str | bytes, what: str) -> Any:
    """Parse JSON; a 400 RequestError when it is not JSON or nests deeper than the parser can
    go (the stdlib parser is recursive: RecursionError, not ValueError)."""
    try:
        return parse_json(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"{what} is not valid JSON", "BAD_REQUEST") from exc
    except RecursionError as exc:
        raise RequestError(400, f"{what} is nested too deeply", "BAD_REQUEST") from exc


def _json_param(value: str | None, name: str) -> Any:
    if value is None or value == "":
        return None
    return loads(value, name)


async def read_operations(request: Request, *, max_batch: int) -> tuple[list[Any], bool]:
    """The operations of a GET or POST (not yet checked one by one), and whether they came as
    a batch (a JSON array)."""
    if request.method == "GET":
        q = request.query_params
        params: Any = {
            "query": q.get("query"),
            "operationName": q.get("operationName"),
            "variables": _json_param(q.get("variables"), "variables"),
            "extensions": _json_param(q.get("extensions"), "extensions"),
            "documentId": q.get("documentId"),
        }
        return [params], False
    content_type = request.headers.get("content-type", "")
    media, *ct_params = (p.strip().lower() for p in content_type.split(";"))
    if media != JSON:
        raise RequestError(
            415,
            f"POST bodies must be {JSON} (got {media or 'no content-type'})",
            "UNSUPPORTED_MEDIA_TYPE",
        )
    for p in ct_params:
        if p.startswith("charset=") and p[8:].strip('"') not in ("utf-8", "utf8"):
            raise RequestError(415, "only utf-8 bodies are accepted", "UNSUPPORTED_MEDIA_TYPE")
    body = await request.body()
    if not body.strip():
        raise RequestError(400, "the request body is empty", "BAD_REQUEST")
    params = loads(body, "the request body")
    if isinstance(params, list):
        if not params:
            raise RequestError(400, "a batch needs at least one operation", "BAD_REQUEST")
        if len(params) > max_batch:
            raise RequestError(
                400,
                f"a batch holds at most {max_batch} operations (GRAPHQL_MAX_BATCH); "
                f"this one has {len(params)}",
                "BATCH_TOO_LARGE",
            )
        return params, True
    return [params], False


def check_params(params: Any) -> dict[str, Any]:
    """One operation's parameters, checked for shape (the document itself is resolved by
    `conveyor.api.persisted`: it may be absent when a hash names it)."""
    if not isinstance(params, dict):
        raise RequestError(400, "the request body must be a JSON object", "BAD_REQUEST")
    for name, kind in (
        ("operationName", str),
        ("variables", dict),
        ("extensions", dict),
        ("documentId", str),
    ):
        value = params.get(name)
        if value is not None and not isinstance(value, kind):
            raise RequestError(
                400, f"the `{name}` parameter must be a {kind.__name__} or null", "BAD_REQUEST"
            )
    return params


def _is_request_error(result: ExecutionResult) -> bool:
    """No execution happened: parse, validation or variable-coercion errors."""
    if isinstance(result, PreExecutionError):
        return True
    return (
        result.data is None and bool(result.errors) and all(not e.path for e in result.errors or ())
    )


def _dump(body: Mapping[str, Any] | list[Any]) -> bytes:
    return orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS)


def respond(
    status: int, body: Mapping[str, Any] | list[Any], media: str, headers: dict[str, str]
) -> Response:
    return Response(
        _dump(body), status_code=status, media_type=f"{media}; charset=utf-8", headers=headers
    )


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


@dataclass(frozen=True)
class Answer:
    """One operation's answer: what it would be alone (status, body, extra headers)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


async def execute(
    schema: BaseSchema,
    request: Request,
    context: Callable[[], Any],
    *,
    media: str,
    timeout: float,
    persisted: Persisted,
    max_batch: int,
) -> Response:
    """Run a GraphQL request (already authenticated), one operation or a batch, and answer
    it per the spec. `context` makes each operation's context."""
    headers = {"X-Request-ID": audit.REQUEST.get().request_id or ""}
    try:
        operations, batched = await read_operations(request, max_batch=max_batch)
    except RequestError as exc:
        return respond(
            exc.status, error_body(str(exc), exc.code), media, {**headers, **exc.headers}
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    answers: list[Answer] = []
    for params in operations:
        remaining = deadline - loop.time()
        if remaining <= 0:
            answers.append(_timed_out(timeout))
            continue
        one = _Operation(schema, request, context(), media=media, persisted=persisted)
        answers.append(await one.run(params, remaining, timeout))
    if not batched:
        answer = answers[0]
        return respond(answer.status, answer.body, media, {**headers, **answer.headers})
    return respond(200, [a.body for a in answers], media, headers)


def _timed_out(timeout: float) -> Answer:
    log.warning("GraphQL request timed out", extra={"request_id": audit.REQUEST.get().request_id})
    return Answer(504, error_body(f"the request took longer than {timeout:g} s", "TIMEOUT"))


class _Operation:
    def __init__(
        self,
        schema: BaseSchema,
        request: Request,
        context: Any,
        *,
        media: str,
        persisted: Persisted,
    ) -> None:
        self.schema = schema
        self.request = request
        self.context = context
        self.media = media
        self.persisted = persisted

    def _request_error(self, body: dict[str, Any]) -> Answer:
        return Answer(400 if self.media == GRAPHQL_RESPONSE else 200, body)

    async def run(self, raw: Any, remaining: float, timeout: float) -> Answer:
        try:
            params = check_params(raw)
            resolved = await self.persisted.resolve(params)
        except RequestError as exc:
            return Answer(exc.status, error_body(str(exc), exc.code), exc.headers)
        except PersistedQueryError as exc:
            refused = error_body(str(exc), exc.code)
            return self._request_error(refused) if exc.request_error else Answer(400, refused)
        name = params.get("operationName") or "anonymous"
        with tracing.span(f"GraphQL {name}", {"graphql.operation.name": name}) as span:
            answer = await self._execute(params, resolved, remaining, timeout)
            span.set_attribute("http.response.status_code", answer.status)
        return answer

    async def _execute(
        self, params: dict[str, Any], resolved: Resolved, remaining: float, timeout: float
    ) -> Answer:
        get = self.request.method == "GET"
        allowed = {OperationType.QUERY} if get else {OperationType.QUERY, OperationType.MUTATION}
        try:
            result = await asyncio.wait_for(
                self.schema.execute(
                    resolved.query,
                    variable_values=params.get("variables"),
                    context_value=self.context,
                    operation_name=params.get("operationName"),
                    allowed_operation_types=allowed,
                ),
                timeout=remaining,
            )
        except InvalidOperationTypeError as exc:
            if get:
                return Answer(
                    405,
                    error_body("only queries may be sent with GET; use POST", "METHOD_NOT_ALLOWED"),
                    {"Allow": "POST"},
                )
            return Answer(
                400,
                error_body(
                    f"{exc.operation_type.value} operations need a WebSocket", "BAD_REQUEST"
                ),
            )
        except MissingQueryError:
            return Answer(400, error_body("no query", "BAD_REQUEST"))
        except CannotGetOperationTypeError as exc:
            return Answer(400, error_body(exc.as_http_error_reason(), "BAD_REQUEST"))
        except TimeoutError:
            return _timed_out(timeout)
        errors = [_format(e) for e in result.errors or ()]
        if _is_request_error(result):
            return self._request_error({"errors": errors})
        if resolved.register is not None:  # it parsed and validated: worth keeping
            await self.persisted.register(resolved.register, resolved.query)
        body: dict[str, Any] = {"data": result.data}
        if errors:
            body["errors"] = errors
        if result.extensions:
            body["extensions"] = result.extensions
        return Answer(200, body)


def _format(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = formatted.get("extensions") or {}
    if "code" not in extensions:
        formatted["extensions"] = {**extensions, "code": "GRAPHQL_VALIDATION_FAILED"}
    return formatted
