"""create_app(): the Starlette application (GraphQL over HTTP and WebSocket, health, dashboard)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor import gc_freeze, kinds, logs, metrics, pubsub, tasks, tracing
from conveyor.api import persisted
from conveyor.api.connections import Connections
from conveyor.api.http import ConveyorGraphQL
from conveyor.api.schema import ConveyorSchema, create_schema
from conveyor.domain.errors import ServiceUnavailable
from conveyor.services import limits, ops
from conveyor.services.auth import Authenticator
from conveyor.services.deps import Deps, open_deps
from conveyor.services.scheduler import Scheduler
from conveyor.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _find_frontend() -> Path:
    """The built dashboard: inside the installed package (a wheel carries it as
    `conveyor/_frontend`, pyproject.toml), else in the checkout (`make frontend`)."""
    here = Path(__file__).resolve().parent
    packaged = here / "_frontend"
    return packaged if (packaged / "index.html").is_file() else here.parent / "frontend" / "dist"


FRONTEND = _find_frontend()

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[dict[str, object]]]


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, before anything reads them whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.limit)(scope, receive, send)


class DevExposureWarning:
    """With ENV=dev (the default): the built-in SECRET_KEY signs tokens, introspection, the
    explorer and /metrics are open. Warn, once per process, when a request arrives on a
    non-loopback address: this process is reachable from other machines and should run with
    ENV=production (README, Security). Only installed with ENV=dev."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.warned and scope["type"] in ("http", "websocket"):
            host = (scope.get("server") or ("",))[0]
            with contextlib.suppress(ValueError):  # a Unix socket, or a test client's name
                if not ipaddress.ip_address(host).is_loopback:
                    self.warned = True
                    log.warning(
                        "ENV=dev on a network address (%s): tokens are signed with the "
                        "development key unless SECRET_KEY is set, and introspection, the "
                        "explorer and /metrics are open. Set ENV=production to expose Conveyor.",
                        host,
                    )
        await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> Response:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": f"request body over {limit} bytes",
                    "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                }
            ]
        },
        status_code=413,
    )


def _bearer_is(header: str | None, token: str) -> bool:
    """Whether `header` is `Bearer <token>` (compared in constant time)."""
    scheme, _, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _lifespan(
    settings: Settings,
    registry: kinds.Registry,
    schema: ConveyorSchema,
    trusted: persisted.TrustedDocuments | None,
) -> Lifespan:
    """What a process builds once: the dependencies, the events hub, the open-socket registry
    and the GraphQL app; handed to requests as Starlette lifespan state (`request.state`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        tracing.configure(settings, "conveyor-api")
        async with open_deps(settings, registry, pool_size=settings.database_pool_size) as deps:
            hub = pubsub.Hub(
                deps.redis,
                deps.prefix,
                buffer=settings.subscriber_buffer,
                max_subscribers=settings.max_subscriptions_per_process,
            )
            authenticator = Authenticator(
                deps.engine,
                cache_seconds=settings.auth_cache_seconds,
                secret_key=settings.secret_key.get_secret_value(),
            )
            connections = Connections(deps, authenticator, hub)
            graphql = ConveyorGraphQL(
                deps, hub, authenticator, schema=schema, connections=connections, trusted=trusted
            )
            await hub.start()
            await connections.start()
            await limits.sync_code(deps)
            scheduler_task: asyncio.Task[None] | None = None
            if settings.scheduler_enabled:
                holder = f"{socket.gethostname()}-{os.getpid()}-api-{uuid.uuid4().hex[:6]}"
                scheduler_task = asyncio.create_task(
                    Scheduler(deps, holder).run(), name="scheduler"
                )
            gc_freeze.settle()
            try:
                yield {"deps": deps, "hub": hub, "graphql": graphql}
            finally:
                if scheduler_task is not None:
                    await tasks.finish(scheduler_task)
                await connections.stop()
                await hub.stop()

    return lifespan


class GraphQLEndpoint:
    """HTTP and WebSocket `/graphql`: the GraphQL app the lifespan built. (An ASGI object, not
    a function, so that Starlette routes the raw scope to it.)"""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        graphql: ConveyorGraphQL = scope["state"]["graphql"]
        await graphql(scope, receive, send)


class GraphQLSockets:
    """WebSockets to `/graphql` go straight to the GraphQL app. The layers inside this one
    (the body limit, Starlette's exception handlers, routing) do nothing for a WebSocket, but
    each would keep a frame alive for as long as the connection: several KB per idle
    subscription (tracemalloc, ADR-0025). Every other scope takes the usual path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.endpoint = GraphQLEndpoint()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/graphql":
            await self.endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    deps: Deps = request.state.deps
    checks: dict[str, str] = {}
    try:
        async with deps.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["postgresql"] = "ok"
    except Exception as exc:
        checks["postgresql"] = f"unavailable: {type(exc).__name__}"
    try:
        await deps.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(checks, status_code=200 if ok else 503)


async def metrics_endpoint(request: Request) -> Response:
    """Job counts of every tenant: for the operator's scraper only (README, Metrics)."""
    deps: Deps = request.state.deps
    token = deps.settings.metrics_token
    if token is None:
        if deps.settings.env != "dev":
            return PlainTextResponse("Not Found", status_code=404)
    elif not _bearer_is(request.headers.get("authorization"), token.get_secret_value()):
        return PlainTextResponse(
            "/metrics wants Authorization: Bearer <METRICS_TOKEN>",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    hub: pubsub.Hub = request.state.hub
    graphql: ConveyorGraphQL = request.state.graphql
    # On an outage, serve the last values; /readyz says what is down.
    with contextlib.suppress(ServiceUnavailable):
        await ops.refresh_metrics(deps, hub.subscriber_count, graphql.feeds.group_count)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def spa(request: Request) -> Response:
    """The dashboard (any path but the API's) and the explorer at /graphiql."""
    page = "graphiql.html" if request.url.path.rstrip("/") == "/graphiql" else "index.html"
    if page == "graphiql.html" and not request.state.deps.settings.explorer:
        return PlainTextResponse("The explorer is turned off (GRAPHQL_EXPLORER).", 404)
    path = FRONTEND / page
    if not path.exists():
        return PlainTextResponse(
            "The dashboard is not built: run `make frontend` (or `conveyor dev`).",
            status_code=404,
        )
    return FileResponse(path)


def process_app() -> Starlette:
    """The app of one process of `conveyor serve --workers N` (uvicorn's factory, called in
    each new process): settings from the environment, logging as the command sets it up."""
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(
    settings: Settings | None = None, registry: kinds.Registry | None = None
) -> Starlette:
    """The API. `registry`: the kinds it accepts (default: `settings.jobs`, loaded now)."""
    settings = settings or get_settings()
    if registry is None:
        registry = kinds.load(settings.jobs)
    schema = create_schema(settings, registry)
    trusted = None
    if settings.graphql_trusted_documents:
        # Read at start: a manifest that cannot be used stops the process here, not later.
        trusted = persisted.TrustedDocuments.load(
            [persisted.DASHBOARD_MANIFEST, *settings.trusted_manifests]
        )
    lifespan = _lifespan(settings, registry, schema, trusted)
    routes = [
        Route("/graphql", GraphQLEndpoint(), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", GraphQLEndpoint()),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    if (FRONTEND / "assets").is_dir():
        routes.append(Mount("/assets", StaticFiles(directory=FRONTEND / "assets")))
    routes += [Route("/", spa), Route("/{path:path}", spa)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(GraphQLSockets)  # outside the layers a WebSocket needs none of
    if settings.env == "dev":
        app.add_middleware(DevExposureWarning)
    # Cross-origin browser requests only from configured origins (none by default). Keys are
    # bearer headers, never cookies, so no credentials are allowed either.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.origins,
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type", "accept", "x-request-id"],
        expose_headers=["x-request-id"],
        max_age=600,
    )
    return app
