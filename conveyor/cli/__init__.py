"""The `conveyor` command: migrate, serve, worker, dev, create-api-key, create-tenant,
create-superuser, list-api-keys, revoke-api-key, export-schema.

Each subcommand names its handler (`set_defaults(run=...)`), a function of the settings and the
parsed arguments that returns the exit status.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_settings import SettingsError

from conveyor import logs
from conveyor.cli import admin, servers
from conveyor.cli.checks import fail
from conveyor.settings import Settings, get_settings

log = logging.getLogger(__name__)

Command = Callable[[Settings, argparse.Namespace], int]

#: The commands that hash or sign with SECRET_KEY: they warn when it is the development key.
_USES_SECRET = frozenset({"serve", "worker", "dev", "create-api-key", "create-superuser"})


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="conveyor", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        return p

    p = command("migrate", admin.migrate, "create the database if missing and apply migrations")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    for name, run, help_ in (
        ("serve", servers.serve, "run the API"),
        ("dev", servers.dev, "migrate, then run API + worker"),
    ):
        p = command(name, run, help_)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    p = command("worker", servers.worker, "run a worker")
    p.add_argument("--queues", help="comma-separated queues (default: WORKER_QUEUES)")
    p.add_argument(
        "--concurrency", type=_positive, help="jobs run at once (default: WORKER_CONCURRENCY)"
    )
    p = command(
        "create-api-key", admin.create_api_key, "create an API key; prints it on the last line"
    )
    p.add_argument("--name", required=True)
    p.add_argument("--admin", action="store_true", help="role admin (of the tenant)")
    p.add_argument("--tenant", help="tenant name (default: the `default` tenant)")
    p.add_argument("--role", choices=["admin", "operator", "submitter", "viewer"])
    p.add_argument("--expires-in-days", type=float, help="the key stops working after this")
    p = command(
        "create-superuser",
        admin.create_superuser,
        "create a platform superuser key (manages tenants)",
    )
    p.add_argument("--name", required=True)
    p.add_argument("--tenant", help="its home tenant (default: `default`)")
    p = command(
        "create-tenant", admin.create_tenant, "create a tenant; prints its id on the last line"
    )
    p.add_argument("--name", required=True)
    p = command("list-api-keys", admin.list_api_keys, "list a tenant's keys (never their secrets)")
    p.add_argument("--tenant", help="tenant name (default: `default`)")
    p = command(
        "revoke-api-key",
        admin.revoke_api_key,
        "revoke a key now (open WebSockets are closed)",
    )
    p.add_argument("--id", required=True)
    p = command("export-schema", admin.export_schema, "write schema.graphql from the code")
    p.add_argument("--check", action="store_true", help="fail if schema.graphql is out of date")
    p.add_argument(
        "--output", metavar="PATH", help="write here instead (`-`: stdout); default schema.graphql"
    )
    return top


def _settings() -> Settings | int:
    """The settings, or exit status 2 after one line per bad variable."""
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            fail(f"invalid setting {name}: {error['msg'].removeprefix('Value error, ')}")
        return 2
    except SettingsError as exc:  # a value pydantic-settings could not even parse
        return fail(f"invalid settings: {' '.join(str(exc).split())}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings()
    if isinstance(settings, int):
        return settings
    logs.configure(settings.log_level, settings.log_format)
    if args.command in _USES_SECRET and settings.dev_secret:
        log.warning("SECRET_KEY is not set: using the built-in development key (ENV=dev only)")
    run: Command = args.run
    return run(settings, args)
