"""The GraphQL endpoint over HTTP (`graphql_http`) and WebSocket (strawberry), with
authentication in front of both."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from datetime import timedelta
from typing import Any, cast

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import CompleteMessage
from strawberry.utils.aio import aclosing

from conveyor import tracing
from conveyor.api import direct, graphql_http, persisted
from conveyor.api.connections import Connections
from conveyor.api.context import Context
from conveyor.api.feeds import Feeds
from conveyor.api.legacy_ws import LegacyWSHandler
from conveyor.api.schema import ConveyorSchema
from conveyor.domain.errors import ServiceUnavailable, Unauthenticated
from conveyor.pubsub import Hub
from conveyor.services import audit
from conveyor.services.auth import Authenticator
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
CLOSE_NO_SUBPROTOCOL = 4406
#: Where on_ws_connect leaves why it refused a credential, for the close reason.
_REJECTION = "conveyor.rejection"
#: At most 123 bytes (a close frame's limit).
NO_SUBPROTOCOL_REASON = (
    "no supported subprotocol: offer graphql-transport-ws, or graphql-ws "
    "(subscriptions-transport-ws)"
)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, except that an operation that fails to parse or names an unknown
    operation gets an `error` message for its id: one bad subscription does not close the
    socket and every other subscription on it (strawberry closes with 4400)."""

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        return None

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Queries and mutations get the HTTP endpoint's time limit (an `error` for that
        operation; the socket and its other operations carry on); subscriptions have none."""
        view = cast(ConveyorGraphQL, self.view)
        timeout = view.operation_timeout(operation.query, operation.operation_name)
        refused = view.untrusted(operation.query)
        if refused is not None:
            await operation.send_initial_errors([refused])
            return
        try:
            async with asyncio.timeout(timeout) as limit:
                await self._run(operation)
        except TimeoutError:
            if not limit.expired():
                raise
            log.warning(
                "GraphQL operation over WebSocket timed out",
                extra={"request_id": audit.REQUEST.get().request_id},
            )
            error = GraphQLError(
                f"the operation took longer than {timeout:g} s", extensions={"code": "TIMEOUT"}
            )
            await operation.send_initial_errors([error])

    async def _run(self, operation: Operation[Context, None]) -> None:
        # The parser cache raises syntax errors out of `schema.stream` (instead of returning
        # a PreExecutionError); strawberry would then only send `complete`. Answer `error`.
        direct.serve(self, operation)  # shared feeds may write its results to the socket
        try:
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
        except GraphQLError as error:
            await operation.send_initial_errors([error])
            return
        except CannotGetOperationTypeError as exc:
            await operation.send_initial_errors([GraphQLError(exc.as_http_error_reason())])
            return
        except InvalidOperationTypeError as exc:
            reason = f"{exc.operation_type.value} operations are not allowed here"
            await operation.send_initial_errors([GraphQLError(reason)])
            return
        try:
            async with aclosing(source):
                await self._send_result_stream(operation, source)
        except _OperationStreamClosed:
            return
        except GraphQLError as error:  # raised on the first iteration, before any result
            await operation.send_initial_errors([error])
            return
        await operation.send_operation_message(CompleteMessage(id=operation.id, type="complete"))


def _request_info(scope: Scope) -> audit.RequestInfo:
    headers = dict(scope.get("headers") or [])
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    client = scope.get("client")
    return audit.RequestInfo(
        request_id=given if _REQUEST_ID.match(given) else audit.new_request_id(),
        client_addr=client[0] if client else None,
    )


class _WebSocketAdapter(ASGIWebSocketAdapter):
    async def close(self, code: int, reason: str) -> None:
        """Close reasons that say why: strawberry says only "Subprotocol not acceptable" and
        "Forbidden" (a client such as gql shows nothing else)."""
        if code == CLOSE_NO_SUBPROTOCOL:
            reason = NO_SUBPROTOCOL_REASON
        refused = self.ws.scope.get(_REJECTION)
        if code == 4403 and reason == "Forbidden" and refused:
            reason = f"Forbidden: {refused}"[:120]
        await super().close(code, reason)


class ConveyorGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = _WebSocketAdapter

    def __init__(
        self,
        deps: Deps,
        hub: Hub,
        authenticator: Authenticator,
        *,
        schema: ConveyorSchema,
        connections: Connections,
        trusted: persisted.TrustedDocuments | None = None,
    ) -> None:
        s = deps.settings
        super().__init__(
            schema,
            graphql_ide=None,  # the bundled, offline GraphiQL is served at /graphiql instead
            keep_alive=True,
            keep_alive_interval=15,  # the legacy protocol's `ka` messages
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=s.ws_init_timeout_seconds),
            max_subscriptions_per_connection=s.max_subscriptions_per_connection,
            allowed_origins=s.origins,
        )
        self.deps = deps
        self.persisted = persisted.Persisted(
            deps.redis,
            deps.prefix,
            cache_size=s.graphql_apq_cache_size,
            trusted=trusted,
        )
        self.hub = hub
        self.authenticator = authenticator
        self.connections = connections
        self.feeds = Feeds(
            schema._schema,
            hub,
            buffer=s.subscriber_buffer,
            rules=schema.validation_rules,
            max_tokens=schema.max_tokens,
        )
        self._next_cache: OrderedDict[int, tuple[object, str]] = OrderedDict()
        self._subscriptions: OrderedDict[tuple[str, str | None], bool] = OrderedDict()
        self._max_tokens = schema.max_tokens

    def operation_timeout(self, query: str, operation_name: str | None) -> float | None:
        """Over a WebSocket, queries and mutations get the HTTP endpoint's time limit;
        subscriptions have none."""
        if self.is_subscription(query, operation_name):
            return None
        return self.deps.settings.graphql_timeout_seconds

    def untrusted(self, query: str) -> GraphQLError | None:
        """The refusal of an operation outside the trusted documents (None: it may run)."""
        trusted = self.persisted.trusted
        if trusted is None or trusted.allows(query):
            return None
        return GraphQLError(
            "this server runs trusted documents only (GRAPHQL_TRUSTED_DOCUMENTS), and this "
            "operation is in none of its manifests",
            extensions={"code": persisted.NOT_TRUSTED},
        )

    async def create_websocket_response(
        self, request: WebSocket, subprotocol: str | None
    ) -> WebSocket:
        """Without a protocol we speak, the handshake still completes (echoing the client's
        first offer), so that every client, browsers included, sees the 4406 close and its
        reason instead of a failed handshake."""
        offered = request.scope.get("subprotocols") or []
        await request.accept(subprotocol=subprotocol or (offered[0] if offered else None))
        return request

    def is_subscription(self, query: str, operation_name: str | None) -> bool:
        """Whether the document's operation is a subscription (cached: clients send the same
        few documents; one that does not parse is not, and fails when it runs)."""
        key = (query, operation_name)
        found = self._subscriptions.get(key)
        if found is not None:
            self._subscriptions.move_to_end(key)
            return found
        try:
            operation = get_operation_ast(parse(query, max_tokens=self._max_tokens), operation_name)
            found = operation is not None and operation.operation is OperationType.SUBSCRIPTION
        except GraphQLError:
            found = False
        if len(query) <= 16_384:
            self._subscriptions[key] = found
            if len(self._subscriptions) > 512:
                self._subscriptions.popitem(last=False)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = audit.REQUEST.set(_request_info(scope))
        try:
            if scope["type"] == "http":
                request = Request(scope, receive)
                with tracing.server_span(scope["headers"], f"{request.method} /graphql") as span:
                    response = await self._http(request)
                    span.set_attribute("http.response.status_code", response.status_code)
                await response(scope, receive, send)
            else:
                try:
                    await super().__call__(scope, receive, send)
                finally:
                    self.connections.discard(scope)
        finally:
            audit.REQUEST.reset(token)

    async def _http(self, request: Request) -> Response:
        info = audit.REQUEST.get()
        headers = {"X-Request-ID": info.request_id or ""}
        if request.method not in ("GET", "POST"):
            return graphql_http.respond(
                405,
                graphql_http.error_body("use GET or POST", "METHOD_NOT_ALLOWED"),
                graphql_http.JSON,
                {**headers, "Allow": "GET, POST"},
            )
        try:
            media = graphql_http.negotiate(request.headers.get("accept"))
        except graphql_http.RequestError as exc:
            return graphql_http.respond(
                exc.status, graphql_http.error_body(str(exc), exc.code), graphql_http.JSON, headers
            )
        try:
            principal = await self.authenticator.authenticate(request.headers.get("authorization"))
        except Unauthenticated as exc:
            return graphql_http.respond(
                401,
                graphql_http.error_body(str(exc), exc.code),
                media,
                {**headers, "WWW-Authenticate": "Bearer"},
            )
        except ServiceUnavailable as exc:
            return graphql_http.respond(
                503, graphql_http.error_body(str(exc), exc.code), media, headers
            )

        def context() -> Context:
            return Context(
                deps=self.deps,
                hub=self.hub,
                authenticator=self.authenticator,
                request=request,
                response=None,
                _principal=principal,
            )

        return await graphql_http.execute(
            self.schema,
            request,
            context,
            media=media,
            timeout=self.deps.settings.graphql_timeout_seconds,
            persisted=self.persisted,
            max_batch=self.deps.settings.graphql_max_batch,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(
            deps=self.deps,
            hub=self.hub,
            authenticator=self.authenticator,
            request=request,
            response=response,
            feeds=self.feeds if isinstance(request, WebSocket) else None,
        )

    def decode_json(self, data: str | bytes) -> object:
        """WebSocket messages: one nested deeper than the parser can go is not JSON (closed
        4400 like any other), not an error that ends the connection's handler."""
        try:
            return graphql_http.parse_json(data)
        except RecursionError as exc:
            raise json.JSONDecodeError("nested too deeply", "", 0) from exc

    def encode_json(self, data: object) -> str:
        """orjson, and a shared subscription result is encoded once for all its subscribers."""
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data.get("payload")
            if isinstance(payload, dict) and payload.keys() == {"data"}:
                inner = payload["data"]
                cached = self._next_cache.get(id(inner))
                if cached is None or cached[0] is not inner:
                    cached = (inner, orjson.dumps(inner).decode())
                    self._next_cache[id(inner)] = cached
                    if len(self._next_cache) > 64:
                        self._next_cache.popitem(last=False)
                op_id = orjson.dumps(data["id"]).decode()
                return f'{{"id":{op_id},"type":"next","payload":{{"data":{cached[1]}}}}}'
        return orjson.dumps(data).decode()

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("authorization") or params.get("Authorization")
        try:
            principal = await self.authenticator.authenticate(
                header if isinstance(header, str) else None
            )
        except (Unauthenticated, ServiceUnavailable) as exc:
            log.info("websocket connection rejected", extra={"reason": str(exc)})
            if isinstance(context.request, WebSocket):
                context.request.scope[_REJECTION] = str(exc)
            raise ConnectionRejectionError({"code": exc.code, "message": str(exc)}) from exc
        context._principal = principal
        websocket = context.request
        if isinstance(websocket, WebSocket):
            self.connections.add(websocket.scope, principal, websocket)
        return None
