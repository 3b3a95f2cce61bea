"""The `conveyor` command: migrate, serve, worker, dev, kinds, create-api-key, create-tenant,
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
from conveyor.cli import admin, dev, listing, servers
from conveyor.cli.checks import fail
from conveyor.cli.help import environment, version
from conveyor.settings import MAX_API_WORKERS, Settings, get_settings

log = logging.getLogger(__name__)

Command = Callable[[Settings, argparse.Namespace], int]

#: The commands that hash or sign with SECRET_KEY: they warn when it is the development key.
_USES_SECRET = frozenset({"serve", "worker", "dev", "create-api-key", "create-superuser"})
#: Exit status after Ctrl-C, as a shell reports a process SIGINT ended.
INTERRUPTED = 130


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, not {number}")
    return number


def _api_workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of processes: {value!r}") from None
    if not 1 <= number <= MAX_API_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_API_WORKERS}, not {number}")
    return number


def _jobs_option(p: argparse.ArgumentParser, does: str) -> None:
    p.add_argument(
        "--jobs",
        metavar="MODULES",
        help=(
            f"comma-separated job modules whose kinds this process {does}, e.g. acme.jobs "
            "(default: JOB_MODULES; unset, the demo kinds with ENV=dev and none otherwise). "
            "The working directory is importable"
        ),
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="conveyor",
        description=__doc__.split("\n\n")[0],
        epilog=environment(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"conveyor {version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        return p

    p = command("migrate", admin.migrate, "create the database if missing and apply migrations")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    for name, run, help_ in (
        ("serve", servers.serve, "run the API (GraphQL, dashboard, explorer)"),
        ("dev", dev.dev, "migrate, then run the API and a worker (development)"),
    ):
        p = command(name, run, help_)
        p.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default: 127.0.0.1; another one with ENV=dev warns)",
        )
        p.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000)")
        _jobs_option(p, "accepts" if name == "serve" else "accepts and runs")
        if name == "serve":
            p.add_argument(
                "--workers",
                type=_api_workers,
                default=None,
                help="API processes sharing the port (default: API_WORKERS, 1); "
                "about one per core the API may use (README: sizing)",
            )
        # Set by `conveyor dev` on the processes it starts: it has said what they would.
        p.add_argument("--quiet-start", action="store_true", help=argparse.SUPPRESS)
    p = command("worker", servers.worker, "run a worker")
    p.add_argument(
        "--queues", metavar="Q1,Q2", help="comma-separated queues to serve (default: WORKER_QUEUES)"
    )
    p.add_argument(
        "--concurrency", type=_positive, help="jobs run at once (default: WORKER_CONCURRENCY)"
    )
    _jobs_option(p, "runs")
    p.add_argument("--quiet-start", action="store_true", help=argparse.SUPPRESS)
    p = command(
        "kinds",
        listing.kinds,
        "list the job kinds of the job modules, their queues, and the live workers that run them",
    )
    _jobs_option(p, "would run")
    p = command(
        "create-api-key", admin.create_api_key, "create an API key; prints it on the last line"
    )
    p.add_argument("--name", required=True, help="a name to recognise the key by")
    p.add_argument("--admin", action="store_true", help="role admin (of the tenant)")
    p.add_argument("--tenant", help="tenant name (default: the `default` tenant)")
    p.add_argument(
        "--role",
        choices=["admin", "operator", "submitter", "viewer"],
        help="what the key may do in its tenant (default: submitter, or admin with --admin)",
    )
    p.add_argument(
        "--expires-in-days", type=float, metavar="DAYS", help="the key stops working after this"
    )
    p = command(
        "create-superuser",
        admin.create_superuser,
        "create a platform superuser key (manages tenants)",
    )
    p.add_argument("--name", required=True, help="a name to recognise the key by")
    p.add_argument("--tenant", help="its home tenant (default: `default`)")
    p = command(
        "create-tenant", admin.create_tenant, "create a tenant; prints its id on the last line"
    )
    p.add_argument("--name", required=True, help="the tenant's unique name")
    p = command("list-api-keys", admin.list_api_keys, "list a tenant's keys (never their secrets)")
    p.add_argument("--tenant", help="tenant name (default: `default`)")
    p = command(
        "revoke-api-key",
        admin.revoke_api_key,
        "revoke a key now (open WebSockets are closed)",
    )
    p.add_argument("--id", required=True, help="the key's id (`list-api-keys` shows it)")
    p = command("export-schema", admin.export_schema, "write schema.graphql from the code")
    p.add_argument("--check", action="store_true", help="fail if schema.graphql is out of date")
    p.add_argument(
        "--output", metavar="PATH", help="write here instead (`-`: stdout); default schema.graphql"
    )
    return top


def _settings(args: argparse.Namespace) -> Settings | int:
    """The settings (`--jobs` over JOB_MODULES), or exit status 2 after one line per bad
    variable."""
    from conveyor.kinds.loading import parse

    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            fail(f"invalid setting {name}: {error['msg'].removeprefix('Value error, ')}")
        return 2
    except SettingsError as exc:  # a value pydantic-settings could not even parse
        return fail(f"invalid settings: {' '.join(str(exc).split())}")
    jobs: str | None = getattr(args, "jobs", None)
    if jobs is not None:
        try:
            parse(jobs)
        except ValueError as exc:
            return fail(f"invalid --jobs: {exc}")
        settings = settings.model_copy(update={"job_modules": jobs})
    return settings


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        settings = _settings(args)
        if isinstance(settings, int):
            return settings
        logs.configure(settings.log_level, settings.log_format)
        quiet = getattr(args, "quiet_start", False)
        if args.command in _USES_SECRET and settings.dev_secret and not quiet:
            log.warning("SECRET_KEY is not set: using the built-in development key (ENV=dev only)")
        run: Command = args.run
        return run(settings, args)
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling: stop, quietly
        return INTERRUPTED
