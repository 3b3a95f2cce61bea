"""A producer process SIGKILLed right after COMMIT still gets its job run: nothing is left
for it to do after the commit (ADR-0021). One killed before COMMIT leaves nothing."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests import support
from tests.conditions import finished, job_status, until

pytestmark = pytest.mark.chaos


def _produce(env: support.Env, mode: str) -> str:
    """Run a producer process that dies (SIGKILL) around its COMMIT; the job id it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.producer_child", mode],
        env=env.environ(PRODUCER_KEY="billing"),
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


async def test_a_producer_killed_after_commit_still_gets_its_job_run(
    stack: support.Stack, env: support.Env
) -> None:
    await env.sql("CREATE TABLE orders (id text PRIMARY KEY)")
    env.create_key("billing")
    stack.serve(REDISPATCH_AFTER_SECONDS="3600")
    stack.worker(REDISPATCH_AFTER_SECONDS="3600")  # the relay sends it, not the sweep

    before = _produce(env, "before")
    after = _produce(env, "after")

    assert await finished(env, after) == "SUCCEEDED"
    attempts = await env.sql("SELECT status FROM job_attempts WHERE job_id = $1::uuid", after)
    assert [a["status"] for a in attempts] == ["SUCCEEDED"]

    # The one killed before COMMIT: PostgreSQL rolls its transaction back when the socket
    # closes; then neither its order nor its job exists.
    async def rolled_back() -> bool:
        open_tx = await env.sql(
            "SELECT count(*) AS n FROM pg_stat_activity "
            "WHERE datname = $1 AND state LIKE 'idle in transaction%'",
            env.database,
        )
        return open_tx[0]["n"] == 0

    await until(rolled_back, "the killed producer's transaction to end")
    assert await job_status(env, before) is None
    assert [r["id"] for r in await env.sql("SELECT id FROM orders")] == ["after"]
