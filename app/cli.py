"""The `conveyor` command: migrate, serve, worker, dev, create-api-key, create-tenant,
create-superuser, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import SettingsError

from app import logs
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    import uvicorn

    from app.db import migrate

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)

#: The commands that hash or sign with SECRET_KEY: they warn when it is the development key.
_USES_SECRET = frozenset({"serve", "worker", "dev", "create-api-key", "create-superuser"})


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _fail(line: str) -> int:
    sys.stderr.write(f"conveyor: {line}\n")
    return 2


async def _check_redis(settings: Settings) -> str | None:
    from redis.asyncio import Redis
    from redis.exceptions import AuthenticationError

    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await redis.ping()
        return None
    except Exception as exc:
        url = urlsplit(settings.redis_url)  # not the URL itself: it may hold a password
        where = (
            url.path
            if url.scheme == "unix"
            else f"{url.hostname or 'localhost'}:{url.port or 6379}"
        )
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if isinstance(exc, AuthenticationError):
            return f"Redis at {where} refused the login ({reason}): check the password in REDIS_URL"
        return (
            f"Redis is not reachable at {where} ({reason}). "
            "Start it (e.g. `redis-server --daemonize yes` or `docker compose up -d redis`) "
            "or set REDIS_URL."
        )
    finally:
        await redis.aclose()


async def _check_postgres(settings: Settings) -> str | None:
    """None when PostgreSQL answers and the database is at this code's migration head, or at
    a newer one that declares this code compatible (the previous release, ADR-0016)."""
    from app.db import migrate
    from app.db.engine import create_engine, describe_pg_failure

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            revisions = await migrate.revisions(conn)
    except Exception as exc:
        return describe_pg_failure(settings.database_url, exc)
    finally:
        await engine.dispose()
    if revisions is None or revisions.current:  # None: this role may not read alembic_version
        return None
    return _schema_problem(settings, revisions)


def _schema_problem(settings: Settings, revisions: migrate.Revisions) -> str | None:
    """What is wrong with a database whose revision is not this code's head; None (and a
    warning) when a newer release migrated it and says this code still runs against it."""
    from sqlalchemy import make_url

    name = make_url(settings.database_url).database
    wanted = ", ".join(revisions.wanted)
    if revisions.ahead_but_compatible:
        log.warning(
            "database %s is at revision %s, newer than this code (%s), which it declares "
            "compatible (code from %s on): running; upgrade this process to the new release",
            name,
            ", ".join(revisions.unknown),
            wanted,
            revisions.compatible_from,
        )
        return None
    if revisions.unknown:
        needs = (
            f"; it needs code from revision {revisions.compatible_from} on"
            if revisions.compatible_from
            else ""
        )
        return (
            f"database {name} is at revision {', '.join(revisions.unknown)}, which this code "
            f"does not know (it wants {wanted}{needs}): a newer Conveyor migrated it; "
            "run that version"
        )
    return (
        f"database {name} is not migrated (at {', '.join(revisions.applied) or 'none'}, "
        f"code wants {wanted}): run `conveyor migrate`"
    )


async def _preflight(settings: Settings) -> str | None:
    return await _check_postgres(settings) or await _check_redis(settings)


async def _migrate(settings: Settings, downgrade: str | None) -> int:
    """Create the database when missing, then migrate it: one run at a time (an advisory
    lock), with MIGRATION_* timeouts (ADR-0016)."""
    from app.db import migrate
    from app.db.engine import create_engine, describe_pg_failure, ensure_database
    from app.domain.errors import ServiceUnavailable

    try:
        if await ensure_database(settings.database_url):
            _out("created the database")
    except ServiceUnavailable as exc:
        return _fail(str(exc))
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            revisions = await migrate.revisions(conn)
    except Exception as exc:
        return _fail(describe_pg_failure(settings.database_url, exc))
    finally:
        await engine.dispose()
    if revisions is not None and revisions.unknown:
        # A newer release migrated it; these scripts cannot move it. Rolling back to this
        # release without a downgrade is fine while the database says it is compatible.
        if problem := _schema_problem(settings, revisions):
            return _fail(problem)
        _out("the database is at a newer, compatible revision: nothing to do")
        return 0
    lock_timeout = settings.migration_lock_timeout_seconds
    statement_timeout = settings.migration_statement_timeout_seconds
    try:
        if downgrade:
            for step in await migrate.downgrade(
                settings.database_url,
                downgrade,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
            ):
                _out(f"reverted to revision {step}")
            _out(f"downgraded to {downgrade}")
        else:
            applied = await migrate.upgrade(
                settings.database_url,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
                lock_retries=settings.migration_lock_retries,
            )
            for step in applied:
                _out(f"applied revision {step}")
            _out("database is at the latest migration" + ("" if applied else ": nothing to do"))
    except migrate.MigrationFailed as exc:
        return _fail(str(exc))
    return 0


async def _create_key(
    settings: Settings,
    name: str,
    admin: bool,
    *,
    tenant: str | None = None,
    role: str | None = None,
    superuser: bool = False,
    expires_in_days: float | None = None,
) -> int:
    """Create a key (the key alone on the last line). `--admin` means role admin."""
    from datetime import UTC, datetime, timedelta

    from app.db.engine import create_engine
    from app.domain.models import DEFAULT_TENANT_ID
    from app.domain.policy import Role
    from app.services import auth, keys

    if problem := await _check_postgres(settings):
        return _fail(problem)
    if admin and role not in (None, "admin"):
        return _fail("--admin and --role disagree")
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        tenant_id = DEFAULT_TENANT_ID
        if tenant is not None:
            found = await keys.tenant_by_name(engine, tenant)
            if found is None:
                return _fail(f"no tenant {tenant!r} (create it with `conveyor create-tenant`)")
            tenant_id = found.id
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        principal, key = await auth.create_api_key(
            engine,
            name=name,
            admin=admin,
            role=Role(role) if role else None,
            tenant_id=tenant_id,
            superuser=superuser,
            expires_at=expires,
            secret_key=settings.secret_key.get_secret_value(),
        )
    finally:
        await engine.dispose()
    kind = "superuser" if superuser else principal.role
    _out(f"created {kind} API key {principal.name!r} ({principal.id}); it is shown once:")
    _out(key)
    return 0


async def _list_keys(settings: Settings, tenant: str | None) -> int:
    from app.db.engine import create_engine
    from app.domain.models import DEFAULT_TENANT_ID
    from app.services import keys

    if problem := await _check_postgres(settings):
        return _fail(problem)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        tenant_id = DEFAULT_TENANT_ID
        if tenant is not None:
            found = await keys.tenant_by_name(engine, tenant)
            if found is None:
                return _fail(f"no tenant {tenant!r}")
            tenant_id = found.id
        for k in await keys.keys_of_tenant(engine, tenant_id):
            state = "revoked" if k.revoked_at else "active"
            expires = f" expires {k.expires_at.isoformat()}" if k.expires_at else ""
            _out(f"{k.id}  {k.role:<9}  {state:<7}  {k.name}{expires}")
    finally:
        await engine.dispose()
    return 0


async def _revoke_key(settings: Settings, key_id: str) -> int:
    import uuid

    from redis.asyncio import Redis

    from app.db.engine import create_engine
    from app.services import keys

    if problem := await _check_postgres(settings):
        return _fail(problem)
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        return _fail(f"not a key id: {key_id!r}")
    engine = create_engine(settings.database_url, pool_size=1)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        revoked = await keys.revoke_from_cli(engine, redis, settings.redis_prefix, parsed)
    finally:
        await redis.aclose()
        await engine.dispose()
    if revoked is None:
        return _fail(f"no active key {key_id}")
    _out(f"revoked API key {revoked.name!r} ({revoked.id})")
    return 0


async def _create_tenant(settings: Settings, name: str) -> int:
    from app.db.engine import create_engine
    from app.domain.errors import InvalidInput
    from app.services import keys

    if problem := await _check_postgres(settings):
        return _fail(problem)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        tenant = await keys.create_tenant(engine, name=name, by=None)
    except InvalidInput as exc:
        return _fail("; ".join(f.message for f in exc.field_errors) or str(exc))
    finally:
        await engine.dispose()
    _out(f"created tenant {tenant.name!r}:")
    _out(str(tenant.id))
    return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from app.main import create_app

    if problem := asyncio.run(_preflight(settings)):
        return _fail(problem)
    if settings.env == "dev" and not _loopback(host):
        log.warning(
            "ENV=dev on %s: introspection, the explorer and /metrics are open%s. "
            "Set ENV=production (and SECRET_KEY) to expose Conveyor.",
            host,
            ", and tokens are signed with the development key" if settings.dev_secret else "",
        )
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
        ws=settings.ws_implementation,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        timeout_graceful_shutdown=10,
    )
    # As `uvicorn.run`: a server that never started (port taken, lifespan failed) is a failure.
    return 0 if _run_server(config) else 3


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def _run_server(config: uvicorn.Config) -> bool:
    """Run uvicorn until a signal stops it; True if it had started.

    `uvicorn.Server.capture_signals` re-raises a SIGTERM/SIGINT once the server has shut down
    gracefully, so the process dies of the signal (exit -15) although it stopped cleanly. This
    server's `capture_signals` is uvicorn's without that re-raise: a clean stop exits 0. A
    second SIGINT still forces the exit (`handle_exit`)."""
    import uvicorn
    from uvicorn.server import HANDLED_SIGNALS

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the handlers are in place
        server.run()
    return server.started


def _worker(settings: Settings, queues: list[str], concurrency: int) -> int:
    from app import jobs
    from app.worker.main import Worker

    if problem := asyncio.run(_preflight(settings)):
        return _fail(problem)
    registry = jobs.load()
    # uvloop, as uvicorn uses for the API: the worker's hot path is event-loop bookkeeping
    # (tasks, socket reads, callbacks), which uvloop does in C.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(Worker(settings, registry, queues=queues, concurrency=concurrency).run())
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on this platform: the standard loop
        return None
    return uvloop.new_event_loop


def _dev(settings: Settings, host: str, port: int) -> int:
    """Migrate, build the dashboard if missing, then run the API and a worker together."""
    if problem := asyncio.run(_preflight_pg_server(settings)):
        return _fail(problem)
    if code := asyncio.run(_migrate(settings, None)):
        return code
    if problem := asyncio.run(_check_redis(settings)):
        return _fail(problem)
    if (
        not (ROOT / "frontend" / "dist" / "index.html").exists()
        and (ROOT / "frontend" / "package.json").exists()
    ):
        _out("building the dashboard (first run)...")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT / "frontend", check=False)
        subprocess.run(["npm", "run", "build"], cwd=ROOT / "frontend", check=False)
    asyncio.run(_create_key(settings, "dev-admin", True))
    exe = [sys.executable, "-m", "app"]
    procs = [
        subprocess.Popen([*exe, "serve", "--host", host, "--port", str(port)]),
        subprocess.Popen([*exe, "worker"]),
    ]
    base = f"http://{host}:{port}"
    _out(f"Conveyor is running: dashboard {base}/  API {base}/graphql  explorer {base}/graphiql")
    _out("Sign in with the admin key printed above. Ctrl-C stops everything.")
    try:
        while all(p.poll() is None for p in procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[0].wait(timeout=1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


async def _preflight_pg_server(settings: Settings) -> str | None:
    from app.db.engine import ensure_database
    from app.domain.errors import ServiceUnavailable

    try:
        await ensure_database(settings.database_url)
        return None
    except ServiceUnavailable as exc:
        return str(exc)


def _export_schema(check: bool) -> int:
    from app.api.schema import sdl

    target = ROOT / "schema.graphql"
    current = sdl()
    if check:
        if not target.exists() or target.read_text() != current:
            return _fail("schema.graphql is out of date: run `conveyor export-schema`")
        _out("schema.graphql is up to date")
        return 0
    target.write_text(current)
    _out(f"wrote {target}")
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conveyor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="create the database if missing and apply migrations")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    for name, help_ in (("serve", "run the API"), ("dev", "migrate, then run API + worker")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    p = sub.add_parser("worker", help="run a worker")
    p.add_argument("--queues", help="comma-separated queues (default: WORKER_QUEUES)")
    p.add_argument(
        "--concurrency", type=_positive, help="jobs run at once (default: WORKER_CONCURRENCY)"
    )
    p = sub.add_parser("create-api-key", help="create an API key; prints it on the last line")
    p.add_argument("--name", required=True)
    p.add_argument("--admin", action="store_true", help="role admin (of the tenant)")
    p.add_argument("--tenant", help="tenant name (default: the `default` tenant)")
    p.add_argument("--role", choices=["admin", "operator", "submitter", "viewer"])
    p.add_argument("--expires-in-days", type=float, help="the key stops working after this")
    p = sub.add_parser("create-superuser", help="create a platform superuser key (manages tenants)")
    p.add_argument("--name", required=True)
    p.add_argument("--tenant", help="its home tenant (default: `default`)")
    p = sub.add_parser("create-tenant", help="create a tenant; prints its id on the last line")
    p.add_argument("--name", required=True)
    p = sub.add_parser("list-api-keys", help="list a tenant's keys (never their secrets)")
    p.add_argument("--tenant", help="tenant name (default: `default`)")
    p = sub.add_parser("revoke-api-key", help="revoke a key now (open WebSockets are closed)")
    p.add_argument("--id", required=True)
    p = sub.add_parser("export-schema", help="write schema.graphql from the code")
    p.add_argument("--check", action="store_true", help="fail if schema.graphql is out of date")
    args = parser.parse_args(argv)

    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            _fail(f"invalid setting {name}: {error['msg'].removeprefix('Value error, ')}")
        return 2
    except SettingsError as exc:  # a value pydantic-settings could not even parse
        return _fail(f"invalid settings: {' '.join(str(exc).split())}")
    logs.configure(settings.log_level, settings.log_format)
    if args.command in _USES_SECRET and settings.dev_secret:
        log.warning("SECRET_KEY is not set: using the built-in development key (ENV=dev only)")
    if args.command == "migrate":
        return asyncio.run(_migrate(settings, args.downgrade))
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "dev":
        return _dev(settings, args.host, args.port)
    if args.command == "worker":
        queues = [q for q in (args.queues or "").split(",") if q] or settings.queues
        concurrency = args.concurrency or settings.worker_concurrency  # both are >= 1
        return _worker(settings, queues, concurrency)
    if args.command == "create-api-key":
        if args.expires_in_days is not None and not 0 < args.expires_in_days <= 3650:
            return _fail("--expires-in-days must be > 0 and <= 3650")
        return asyncio.run(
            _create_key(
                settings,
                args.name,
                args.admin,
                tenant=args.tenant,
                role=args.role,
                expires_in_days=args.expires_in_days,
            )
        )
    if args.command == "create-superuser":
        return asyncio.run(
            _create_key(settings, args.name, True, tenant=args.tenant, superuser=True)
        )
    if args.command == "create-tenant":
        return asyncio.run(_create_tenant(settings, args.name))
    if args.command == "list-api-keys":
        return asyncio.run(_list_keys(settings, args.tenant))
    if args.command == "revoke-api-key":
        return asyncio.run(_revoke_key(settings, args.id))
    if args.command == "export-schema":
        return _export_schema(args.check)
    return _fail(f"unknown command {args.command}")  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
