"""The legacy `graphql-ws` subprotocol (Apollo's subscriptions-transport-ws), which gql and
older Apollo clients speak, with what `graphql-transport-ws` gets (ADR-0024):

- the same authentication (`connection_init` payload); a refused credential gets a
  `connection_error` with its code and message, then close 4403 (strawberry closes 1011);
- `connection_init` within WS_INIT_TIMEOUT_SECONDS (4408), once (4429);
- at most MAX_SUBSCRIPTIONS_PER_CONNECTION operations at once, queries and mutations in flight
  included (an `error` for the refused one), trusted documents only when configured;
- queries and mutations under the HTTP time limit (an `error`), subscriptions without one;
- a malformed message gets an `error` for its id (or close 4400 without one), never an
  exception that ends the connection; one bad operation leaves the others running;
- keepalive `ka` messages, the server's WebSocket pings, and revocation (the registry of open
  connections closes either protocol's socket with 4403).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol, cast

from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
    StartMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from conveyor.api.context import Context
from conveyor.services import audit
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)


class View(Protocol):
    """What both protocols' handlers ask of the GraphQL view (`conveyor.api.http`)."""

    deps: Deps

    def operation_timeout(self, query: str, operation_name: str | None) -> float | None: ...

    def untrusted(self, query: str) -> GraphQLError | None: ...


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    _init_received = False

    @property
    def _view(self) -> View:
        return cast(View, self.view)

    async def handle(self) -> None:
        timer = asyncio.create_task(self._init_timeout())
        try:
            await super().handle()
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _init_timeout(self) -> None:
        await asyncio.sleep(self._view.deps.settings.ws_init_timeout_seconds)
        if not self._init_received:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_message(self, message: OperationMessage) -> None:
        raw: Any = message
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self.websocket.close(code=4400, reason="Invalid message")
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self._init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self._init_received = True
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self.send_message(
                {
                    "type": "connection_error",
                    "payload": {"message": "the payload must be an object"},
                }
            )
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        self.context.connection_params = payload
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.send_message({"type": "connection_error", "payload": exc.payload})
            await self.websocket.close(code=4403, reason="Forbidden")
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle_start(self, message: StartMessage) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        raw: dict[str, Any] = cast(dict[str, Any], message)
        op_id, payload = raw.get("id"), raw.get("payload")
        if not isinstance(op_id, str):
            await self.websocket.close(code=4400, reason="A start message needs a string id")
            return
        problem = _payload_problem(payload)
        if problem is not None:
            await self._error(op_id, GraphQLError(problem, extensions={"code": "BAD_REQUEST"}))
            return
        assert isinstance(payload, dict)
        if op_id in self.tasks:
            await self.cleanup_operation(op_id)
        cap = self.max_subscriptions_per_connection
        if cap is not None and len(self.tasks) >= cap:
            await self._error(op_id, GraphQLError("Subscription limit reached"))
            return
        self.tasks[op_id] = asyncio.create_task(
            self._operation(
                op_id, payload["query"], payload.get("operationName"), payload.get("variables")
            )
        )

    async def _error(self, op_id: str, error: GraphQLError) -> None:
        await self.send_message({"type": "error", "id": op_id, "payload": error.formatted})

    async def _operation(
        self,
        op_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        view = self._view
        timeout = view.operation_timeout(query, operation_name)
        try:
            refused = view.untrusted(query)
            if refused is not None:
                await self._error(op_id, refused)
                return
            try:
                async with asyncio.timeout(timeout) as limit:
                    finished = await self._stream(op_id, query, operation_name, variables)
            except TimeoutError:
                if not limit.expired():
                    raise
                log.warning(
                    "GraphQL operation over WebSocket timed out",
                    extra={"request_id": audit.REQUEST.get().request_id},
                )
                message = f"the operation took longer than {timeout:g} s"
                await self._error(op_id, GraphQLError(message, extensions={"code": "TIMEOUT"}))
                return
            if finished:
                await self.send_message({"type": "complete", "id": op_id})
        except asyncio.CancelledError:  # `stop`, or the connection ends
            with contextlib.suppress(Exception):
                await self.send_message({"type": "complete", "id": op_id})
        finally:
            self.subscriptions.pop(op_id, None)
            self.tasks.pop(op_id, None)

    async def _stream(
        self,
        op_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> bool:
        """Send the operation's results; False when it ended with an `error` instead."""
        try:
            source = await self.schema.stream(
                query,
                variable_values=variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation_name,
            )
        except GraphQLError as error:
            await self._error(op_id, error)
            return False
        except CannotGetOperationTypeError as exc:
            await self._error(op_id, GraphQLError(exc.as_http_error_reason()))
            return False
        except InvalidOperationTypeError as exc:
            reason = f"{exc.operation_type.value} operations are not allowed here"
            await self._error(op_id, GraphQLError(reason))
            return False
        first = True
        try:
            async with aclosing(source):
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        assert result.errors
                        await self._error(op_id, result.errors[0])
                        return False
                    if not isinstance(result, ExecutionResult):
                        message = "Incremental delivery is not supported over graphql-ws"
                        await self._error(op_id, GraphQLError(message))
                        return False
                    await self.send_data_message(result, op_id)
                    first = False
        except GraphQLError as error:  # raised on the first iteration, before any result
            if not first:
                raise
            await self._error(op_id, error)
            return False
        return True


def _payload_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "a start message needs a payload object"
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        return "the payload's `query` must be a non-empty string"
    for name, kind in (("operationName", str), ("variables", dict)):
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            return f"the payload's `{name}` must be a {kind.__name__} or null"
    return None
