"""The GraphQL endpoint over HTTP and WebSocket, with authentication in front of it."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app.api.context import Context
from app.api.feeds import Feeds
from app.api.schema import schema
from app.domain.errors import ServiceUnavailable, Unauthenticated
from app.events import Hub
from app.services.auth import Authenticator
from app.services.jobs import Deps

log = logging.getLogger(__name__)


def _error_response(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


class ConveyorGraphQL(GraphQL[Context, None]):
    def __init__(
        self, deps: Deps, hub: Hub, authenticator: Authenticator, *, allowed_origins: list[str]
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,  # the bundled, offline GraphiQL is served at /graphiql instead
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=deps.settings.max_subscriptions_per_connection,
            allowed_origins=allowed_origins,
        )
        self.deps = deps
        self.hub = hub
        self.authenticator = authenticator
        self.feeds = Feeds(schema._schema, hub, buffer=deps.settings.subscriber_buffer)
        self._next_cache: OrderedDict[int, tuple[object, str]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                principal = await self.authenticator.authenticate(
                    request.headers.get("authorization")
                )
            except Unauthenticated as exc:
                await _error_response(401, str(exc), exc.code)(scope, receive, send)
                return
            except ServiceUnavailable as exc:
                await _error_response(503, str(exc), exc.code)(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await super().__call__(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        principal = request.scope.get("state", {}).get("principal")
        return Context(
            deps=self.deps,
            hub=self.hub,
            authenticator=self.authenticator,
            request=request,
            response=response,
            _principal=principal,
            feeds=self.feeds if isinstance(request, WebSocket) else None,
        )

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
            context._principal = await self.authenticator.authenticate(
                header if isinstance(header, str) else None
            )
        except (Unauthenticated, ServiceUnavailable) as exc:
            log.info("websocket connection rejected", extra={"reason": str(exc)})
            raise ConnectionRejectionError({"code": exc.code, "message": str(exc)}) from exc
        return None
