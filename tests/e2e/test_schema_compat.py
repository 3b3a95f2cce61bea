"""Schema evolution with real processes (ADR-0016), for whatever the newest revision is:

- N-1: the previous release (the code at the parent of the commit that added the head
  revision, extracted from git and run with this checkout's Python) serves submit, claim and
  finish against a database at head; this code refuses a database at head-1 in one line.
- Online: the head revision, applied by this code's `conveyor migrate` while the previous
  release's API takes `submitJobs` batches and its worker drains them, completes; every job
  submitted before, during and after reaches SUCCEEDED. The longest submit latency while it
  ran is reported (test-artifacts/online-migration.json, and the captured output).

Nothing here names a revision: everything is computed from the chain and from git.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from conveyor.db import migrate
from conveyor.db.engine import ensure_database
from tests import support

SCRIPTS = ScriptDirectory(str(migrate.MIGRATIONS))
HEAD = SCRIPTS.get_current_head()
SUBMIT_JOBS = """
mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on Job { id } ... on UserError { code message } }
}
"""
#: The previous release's processes: small, so the test is cheap on two shared cores.
PROCESS_ENV = {"WORKER_PROCESSES": "1", "WORKER_CONCURRENCY": "16"}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=support.ROOT, capture_output=True, text=True)


def previous_release_commit() -> str:
    """The commit whose code is the previous release: the parent of the commit that added
    the head revision's script (HEAD itself while that script is not committed yet)."""
    script = SCRIPTS.get_revision(HEAD)
    assert script is not None
    path = Path(script.path).resolve().relative_to(support.ROOT)
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.fail(
            f"the N-1 tests need the git history of {support.ROOT} (not a git repository): "
            "run them from a clone, not an export"
        )
    if _git("ls-files", "--error-unmatch", str(path)).returncode != 0:
        return _git("rev-parse", "HEAD").stdout.strip()  # the head revision is being written
    added = _git("log", "--diff-filter=A", "--format=%H", "--", str(path)).stdout.split()
    parent = _git("rev-parse", "--verify", "--quiet", f"{added[0]}^") if added else None
    if parent is None or parent.returncode != 0:
        pytest.fail(
            f"the N-1 tests need the commit that added {path} and its parent, and the "
            "history here lacks them (a shallow clone?): `git fetch --unshallow`"
        )
    return parent.stdout.strip()


@dataclass
class Release:
    commit: str
    tree: Path
    head: str  #: the previous release's own migration head


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Release:
    commit = previous_release_commit()
    tree = tmp_path_factory.mktemp("previous-release")
    # Releases before the package was renamed (ADR-0018) call it `app`.
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", commit],
        cwd=support.ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    package = "conveyor" if "conveyor" in listed else "app"
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, package, "migrations"],
        cwd=support.ROOT,
        capture_output=True,
        check=True,
    )
    archive_path = tree / "code.tar"
    archive_path.write_bytes(archive.stdout)
    with tarfile.open(archive_path) as tar:
        tar.extractall(tree, filter="data")
    archive_path.unlink()
    head = ScriptDirectory(str(tree / "migrations")).get_current_head()
    assert head is not None
    assert head != HEAD, f"{commit} already has {HEAD}: not the previous release"
    return Release(commit, tree, head)


def _old_stack(env: support.Env, logdir: Path, previous: Release) -> support.Stack:
    stack = support.Stack(env, logdir, code=previous.tree)
    # The old code really is what runs: its package comes from the extracted tree.
    where = subprocess.run(
        [sys.executable, "-c", f"import {stack.package}; print({stack.package}.__file__)"],
        env=stack.environ(),
        cwd=previous.tree,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(previous.tree)), where.stdout
    return stack


@pytest.fixture
async def head_minus_one_db() -> AsyncIterator[support.Env]:
    """A database of its own, not yet migrated."""
    name = f"cvtest_{support.RUN_ID}_n1_{uuid.uuid4().hex[:8]}"
    env = support.Env(database=name, prefix=f"cvtest-{support.RUN_ID}-n1-{uuid.uuid4().hex[:8]}")
    await ensure_database(env.database_url)
    yield env
    await support.drop_database(name)
    await support.delete_redis_prefix(env.prefix)


async def _submit(client: support.GraphQLClient, n: int) -> list[str]:
    inputs = [{"kind": "demo.noop", "payload": {}} for _ in range(n)]
    data = await client(SUBMIT_JOBS, {"inputs": inputs})
    results = data["submitJobs"]
    assert all(r["__typename"] == "Job" for r in results), results
    return [r["id"] for r in results]


async def _wait_succeeded(env: support.Env, ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    wanted = [uuid.UUID(i) for i in ids]
    while True:
        rows = await env.sql(
            "SELECT status, count(*) AS n FROM jobs WHERE id = ANY($1::uuid[]) GROUP BY status",
            wanted,
        )
        by_status = {r["status"]: r["n"] for r in rows}
        if by_status.get("SUCCEEDED", 0) == len(set(wanted)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout}s, of {len(wanted)} jobs: {by_status}")
        await asyncio.sleep(0.2)


async def test_the_previous_release_runs_against_the_new_schema(
    env: support.Env, tmp_path: Path, previous: Release
) -> None:
    """`env` is a clone of the template database, migrated to head by this code."""
    stack = _old_stack(env, tmp_path, previous)
    try:
        key = stack.cli("create-api-key", "--name", "n-1", "--admin").strip().splitlines()[-1]
        _, base = stack.serve(**PROCESS_ENV)
        worker = stack.worker("worker", **PROCESS_ENV)
        client = support.GraphQLClient(base, key)
        try:
            one = await support.submit(client, "demo.sleep", {"steps": 2, "stepSeconds": 0.05})
            assert one["__typename"] == "Job", one
            ids = [one["id"], *await _submit(client, 20)]
            job = await support.wait_for_status(client, one["id"], {"SUCCEEDED"})
            await _wait_succeeded(env, ids)
        finally:
            await client.aclose()
        # Claimed and finished by the old worker, through its lease.
        assert [a["status"] for a in job["attempts"]] == ["SUCCEEDED"]
        assert job["attempts"][0]["workerId"]
        types = [e["type"] for e in job["events"]]
        assert types[0] == "SUBMITTED"
        assert types[-1] == "SUCCEEDED"
        assert worker.popen.poll() is None, worker.output()
    finally:
        stack.stop_all()


async def test_this_code_refuses_a_database_one_revision_behind(
    head_minus_one_db: support.Env,
) -> None:
    script = SCRIPTS.get_revision(HEAD)
    assert script is not None
    parent = script.down_revision
    assert isinstance(parent, str), "the first revision has no schema before it"
    env = head_minus_one_db
    await migrate.upgrade(env.database_url, parent)
    for command in (["serve", "--port", str(support.free_port())], ["worker"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conveyor",
            *command,
            env=env.environ(LOG_FORMAT="text"),
            cwd=support.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 2, err.decode()
        assert err.decode().strip().splitlines() == [
            f"conveyor: database {env.database} is not migrated (at {parent}, code wants "
            f"{HEAD}): run `conveyor migrate`"
        ]


@dataclass
class Batch:
    started: float
    ended: float
    ids: list[str]


@dataclass
class Load:
    batches: list[Batch] = field(default_factory=list)

    def overlapping(self, start: float, end: float) -> list[Batch]:
        return [b for b in self.batches if b.started < end and b.ended > start]


async def test_the_head_migration_applies_under_load_and_loses_no_job(
    head_minus_one_db: support.Env, tmp_path: Path, previous: Release
) -> None:
    env = head_minus_one_db
    await migrate.upgrade(env.database_url, previous.head)
    stack = _old_stack(env, tmp_path, previous)
    batch_size, max_batches = 25, 400  # bounded: at most 10,000 jobs
    load = Load()
    migration: dict[str, float] = {}
    try:
        key = stack.cli("create-api-key", "--name", "load", "--admin").strip().splitlines()[-1]
        _, base = stack.serve(**PROCESS_ENV)
        stack.worker("worker", **PROCESS_ENV)
        client = support.GraphQLClient(base, key)

        async def submitter() -> None:
            while len(load.batches) < max_batches:
                done = "ended" in migration
                after = [b for b in load.batches if done and b.started > migration["ended"]]
                if len(after) >= 5:
                    return
                started = time.monotonic()
                ids = await _submit(client, batch_size)
                load.batches.append(Batch(started, time.monotonic(), ids))
                # Paced (~1,000 jobs/s at most), so the two cores are not all the submitter's.
                await asyncio.sleep(0.02)

        try:
            submitting = asyncio.create_task(submitter())
            # Busy before the migration starts: batches in, and the worker finishing them.
            deadline = time.monotonic() + 60
            while len(load.batches) < 5 or not await env.sql(
                "SELECT 1 FROM jobs WHERE status = 'SUCCEEDED' LIMIT 1"
            ):
                assert not submitting.done(), submitting
                assert time.monotonic() < deadline, "no load before the migration"
                await asyncio.sleep(0.05)
            migration["started"] = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "conveyor",
                "migrate",
                env=env.environ(LOG_FORMAT="text"),
                cwd=support.ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
            except TimeoutError:
                proc.kill()
                pytest.fail("`conveyor migrate` did not finish within 180 s under load: it hangs")
            migration["ended"] = time.monotonic()
            assert proc.returncode == 0, err.decode()
            applied = [line for line in out.decode().splitlines() if line.startswith("applied")]
            chain = SCRIPTS.iterate_revisions(HEAD, previous.head)
            assert applied == [f"applied revision {s.revision}" for s in reversed(list(chain))]
            await asyncio.wait_for(submitting, timeout=120)
            ids = [i for b in load.batches for i in b.ids]
            await _wait_succeeded(env, ids, timeout=180)
        finally:
            await client.aclose()
    finally:
        stack.stop_all()

    before = [b for b in load.batches if b.ended <= migration["started"]]
    during = load.overlapping(migration["started"], migration["ended"])
    after = [b for b in load.batches if b.started >= migration["ended"]]
    assert before
    assert during, "no submit overlapped the migration"
    assert after
    rows = await env.sql("SELECT count(*) AS n FROM jobs")
    assert rows[0]["n"] == len(load.batches) * batch_size  # none lost, none doubled
    report = {
        "revisions": f"{previous.head} -> {HEAD}",
        "jobs": len(load.batches) * batch_size,
        "batch_size": batch_size,
        "migration_seconds": round(migration["ended"] - migration["started"], 3),
        "batches_during_migration": len(during),
        "longest_submit_during_migration_ms": round(
            max(b.ended - b.started for b in during) * 1000, 1
        ),
        "longest_submit_before_ms": round(max(b.ended - b.started for b in before) * 1000, 1),
        "lock_timeout_seconds": migrate.LOCK_TIMEOUT_SECONDS,
    }
    artifacts = support.ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "online-migration.json").write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(f"online migration: {json.dumps(report)}\n")
