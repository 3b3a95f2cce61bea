"""The `conveyor` command and the user's job modules (ADR-0019): one line and exit 2 for each
way they can be wrong, `conveyor kinds`, and what `--help` and `--version` say. Real
processes; the job packages are written to a temporary directory on PYTHONPATH."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from conveyor import cli
from tests import support

KIND = """
from pydantic import BaseModel
from conveyor import job_kind

class In(BaseModel):
    x: int

@job_kind("dup.kind", input=In)
async def handler(ctx, input): ...
"""

PACKAGE = {
    "clijobs/__init__.py": "",
    "clijobs/broken.py": "VALUE = undefined_name\n",
    "clijobs/one.py": KIND,
    "clijobs/two.py": KIND,
    "clijobs/plain.py": """
        from conveyor import job_kind

        @job_kind("plain.kind", input=dict)
        async def handler(ctx, input): ...
        """,
    "clijobs/blocking.py": """
        from pydantic import BaseModel
        from conveyor import job_kind

        class In(BaseModel):
            x: int

        @job_kind("blocking.kind", input=In)
        def handler(ctx, input): ...
        """,
}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobpackages")
    for relative, source in PACKAGE.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(source))
    return root


def _run(
    *args: str, cwd: Path = support.ROOT, command: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "ENV": "dev",
        "DATABASE_URL": support.pg_url(f"clikinds_{support.RUN_ID}_missing"),
        "REDIS_URL": support.REDIS_URL,
        "SECRET_KEY": support.SECRET_KEY,
        "LOG_FORMAT": "text",
        **env,
    }
    return subprocess.run(
        [*(command or [sys.executable, "-m", "conveyor"]), *args],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        (
            "clijobs.absent",
            "conveyor: cannot import job module 'clijobs.absent' (ModuleNotFoundError: No module "
            "named 'clijobs.absent'): is its package installed, or in the working directory or "
            "on PYTHONPATH?",
        ),
        (
            "clijobs.broken",
            "conveyor: cannot import job module 'clijobs.broken' at {root}/clijobs/broken.py:1: "
            "NameError: name 'undefined_name' is not defined",
        ),
        (
            "clijobs.one,clijobs.two",
            "conveyor: job kind 'dup.kind' is registered twice: by clijobs.one:handler and by "
            "clijobs.two:handler",
        ),
        (
            "clijobs.plain",
            "conveyor: job module 'clijobs.plain' at {root}/clijobs/plain.py:4: the input of job "
            "kind 'plain.kind' must be a pydantic BaseModel subclass, not builtins.dict",
        ),
        (
            "clijobs.blocking",
            "conveyor: job module 'clijobs.blocking' at {root}/clijobs/blocking.py:8: the handler "
            "of job kind 'blocking.kind' (clijobs.blocking:handler) must be an `async def` "
            "function",
        ),
        (
            "clijobs/one",
            "conveyor: invalid --jobs: 'clijobs/one' is not a module path (dotted names, e.g. "
            "acme.jobs, comma separated)",
        ),
    ],
    ids=["missing", "raises", "twice", "not-pydantic", "not-async", "not-a-path"],
)
def test_job_modules_that_cannot_run_are_one_line_and_exit_2(
    packages: Path, jobs: str, expected: str
) -> None:
    line = _one_line(_run("worker", "--jobs", jobs, PYTHONPATH=str(packages)))
    assert line == expected.format(root=packages)


def test_serve_checks_its_job_modules_too_and_jobs_overrides_job_modules(packages: Path) -> None:
    line = _one_line(_run("serve", "--jobs", "clijobs.one,clijobs.two", PYTHONPATH=str(packages)))
    assert "registered twice" in line
    line = _one_line(
        _run("worker", PYTHONPATH=str(packages), JOB_MODULES="clijobs.one,clijobs.two")
    )
    assert "registered twice" in line


def test_a_worker_with_no_kinds_refuses_to_start() -> None:
    line = _one_line(_run("worker", ENV="production"))
    assert line == (
        "conveyor: no job kinds to run: point JOB_MODULES or --jobs at your job modules "
        "(e.g. --jobs acme.jobs; unset, only ENV=dev loads the demo kinds; ENV=production)"
    )


async def test_kinds_lists_the_kinds_their_queues_and_the_live_workers(
    env: support.Env,
) -> None:
    """From the example package's directory, with the installed `conveyor` command (the
    working directory is importable, as for uvicorn and celery)."""
    await env.sql(
        "INSERT INTO workers (id, host, pid, queues, kinds, concurrency) "
        "VALUES ('w1', 'h', 1, '{default}', '{invoices.send}', 1)"
    )
    out = _run(
        "kinds",
        "--jobs",
        "acme_jobs",
        cwd=support.ROOT / "examples" / "acme",
        command=[str(Path(sys.executable).parent / "conveyor")],
        DATABASE_URL=env.database_url,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "job modules: acme_jobs",
        "KIND              QUEUE    LIVE WORKERS          DESCRIPTION",
        "invoices.send     default  1                     Send one invoice by e-mail.",
        "reports.generate  reports  0 (queue not served)  Build the monthly report of one account.",
    ]


def test_help_lists_the_environment_variables_and_version_the_distribution() -> None:
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    assert "configuration: environment variables" in out.stdout
    for name in ("DATABASE_URL", "REDIS_URL", "JOB_MODULES", "SECRET_KEY", "WORKER_QUEUES"):
        assert f"\n  {name}\n" in out.stdout
    # The text comes from the settings' own comments (conveyor/settings.py).
    assert "comma-separated module paths" in out.stdout
    version = _run("--version")
    assert version.stdout.strip() == f"conveyor {metadata.version('conveyor')}"


def test_every_option_of_every_command_has_help() -> None:
    subcommands = next(
        a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name, command in subcommands.choices.items():
        for action in command._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"conveyor {name} {action.option_strings[0]} has no help"
