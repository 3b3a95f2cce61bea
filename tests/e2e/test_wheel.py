"""A real install, as a team outside this repository would have it (ADR-0019): the wheel built
from this checkout, installed with its dependencies into a fresh virtualenv (offline, from uv's
cache), running the example job package from a directory of its own: migrations, the API
with the dashboard and the explorer, a worker, a key, a job submitted over HTTP to SUCCEEDED."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.support import GraphQLClient, submit, wait_for_status


def _uv() -> str:
    """uv as `make` finds it: on PATH, or the private copy in .venv-tools/."""
    found = shutil.which("uv") or str(support.ROOT / ".venv-tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed to build the wheel: run `make setup`"
    return found


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{args}:\n{out.stdout}\n{out.stderr}"
    return out  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel of this checkout installed, offline: its dependencies
    as uv.lock pins them (from uv's cache; a resolver would need the index), then the wheel,
    then `uv pip check` that they satisfy the wheel's own requirements."""
    root = tmp_path_factory.mktemp("wheel")
    _run(_uv(), "build", "--wheel", "--offline", "--out-dir", str(root / "dist"), cwd=support.ROOT)
    (wheel,) = (root / "dist").glob("conveyor-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    environ = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    environ.pop("VIRTUAL_ENV", None)
    _run(
        _uv(),
        "sync",
        "--frozen",
        "--no-dev",
        "--no-install-project",
        "--offline",
        "--quiet",
        cwd=support.ROOT,
        env=environ,
    )
    python = str(venv / "bin" / "python")
    _run(
        _uv(), "pip", "install", "--offline", "--no-deps", "--quiet", "--python", python, str(wheel)
    )
    _run(_uv(), "pip", "check", "--python", python)
    return venv


@pytest.fixture
def database() -> Iterator[str]:
    """A database that does not exist yet: the installed `conveyor migrate` creates it."""
    name = f"cvtest_{support.RUN_ID}_wheel"
    yield support.pg_url(name)
    asyncio.run(support.drop_database(name))


def test_the_installed_wheel_runs_a_job_package_from_outside_the_repository(
    venv: Path, database: str, env: support.Env, tmp_path: Path
) -> None:
    project = tmp_path / "acme"
    shutil.copytree(support.ROOT / "examples" / "acme", project)
    conveyor = str(venv / "bin" / "conveyor")
    environ = env.environ(DATABASE_URL=database, LOG_FORMAT="text")
    environ.pop("PYTHONPATH", None)  # nothing of this checkout on the path
    run = {"cwd": project, "env": environ}

    migrated = _run(conveyor, "migrate", **run).stdout
    assert "created the database" in migrated
    assert "applied revision 0001" in migrated

    port = support.free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []
    for args in (["serve", "--port", str(port)], ["worker", "--queues", "default,reports"]):
        with (logs / f"{args[0]}.log").open("w") as log:  # the child keeps its own descriptor
            procs.append(
                subprocess.Popen(
                    [conveyor, *args, "--jobs", "acme_jobs"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **run,  # type: ignore[arg-type]
                )
            )
    try:
        # While they start: the other commands of the installed `conveyor`.
        assert _run(conveyor, "--version", **run).stdout.strip() == "conveyor 0.1.0"
        key = _run(conveyor, "create-api-key", "--name", "acme", "--admin", **run).stdout.split()[
            -1
        ]
        base = f"http://127.0.0.1:{port}"
        _until_healthy(base, procs, logs)
        for page in ("/", "/graphiql"):
            response = httpx.get(base + page, timeout=10)
            assert response.status_code == 200, page
            assert "<!doctype html>" in response.text.lower()
        asyncio.run(_submit_and_wait(base, key))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    for name in ("serve", "worker"):
        assert "Traceback" not in (logs / f"{name}.log").read_text()


def _until_healthy(base: str, procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert all(p.poll() is None for p in procs), _logs(logs)
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, _logs(logs)
        time.sleep(0.1)


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(logs.iterdir()))


async def _submit_and_wait(base: str, key: str) -> None:
    client = GraphQLClient(base, key)
    try:
        job = await submit(client, "reports.generate", {"accountId": 5, "months": 2})
        assert job["__typename"] == "Job", job
        assert job["queue"] == "reports"
        done = await wait_for_status(client, job["id"], {"SUCCEEDED", "FAILED"}, timeout=60)
        assert done["status"] == "SUCCEEDED", done
        assert done["result"] == {"accountId": 5, "months": 2, "rows": 200}
        refused = await submit(client, "reports.generate", {"account_id": 5, "color": "red"})
        assert refused["__typename"] == "InvalidInput"
    finally:
        await client.aclose()
