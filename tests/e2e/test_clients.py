"""The GraphQL clients frontend teams use, against a real API and worker (ADR-0024): Apollo
Client 4, urql 5 (@urql/core 6) and graphql-ws 6 from npm (tests/clients/run.mjs, pinned by
its lockfile, with the TypeScript kit from clients/typescript), each checked for submit,
follow with a forced reconnect, persisted query, batch and bad key where the client has the
feature. gql 4 (Python) is tested in test_clients_gql.py."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests import support

SUITE = support.ROOT / "tests" / "clients"
KIT = support.ROOT / "clients" / "typescript"
#: What each client is checked for: urql has no HTTP batching, graphql-ws is WebSocket only.
CHECKS = {
    "apollo": {
        "submit",
        "subscription through GraphQLWsLink",
        "follow with a forced reconnect",
        "persisted query",
        "batch",
        "bad key",
    },
    "urql": {
        "submit",
        "subscription through subscriptionExchange",
        "follow with a forced reconnect",
        "persisted query",
        "bad key",
    },
    "graphql-ws": {"submit", "follow with a forced reconnect", "bad key"},
}


def _installed() -> None:
    """The kit built and the suite's packages installed, from their lockfiles."""
    for where in (KIT, SUITE):
        if not (where / "node_modules" / ".package-lock.json").exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=where, check=True, capture_output=True
            )
    subprocess.run(["npm", "run", "build"], cwd=KIT, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("client", sorted(CHECKS))
def test_each_client_works_against_a_running_stack(
    stack: support.Stack, env: support.Env, client: str
) -> None:
    _installed()
    _, base = stack.serve()
    stack.worker()
    key = env.create_key("frontend")
    out = subprocess.run(
        ["node", "run.mjs", client],
        cwd=SUITE,
        env={**env.environ(), "CONVEYOR_URL": base, "CONVEYOR_KEY": key},
        capture_output=True,
        text=True,
        timeout=180,
    )
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    assert not failed, json.dumps(failed, indent=1) + out.stderr[-3000:]
    assert {r["check"] for r in results} == CHECKS[client], out.stdout + out.stderr[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_follow_workflow_run_against_the_workflows_contract(
    stack: support.Stack, env: support.Env
) -> None:
    """The kit's followWorkflowRun: gapless across a reconnect once the workflows branch
    provides workflowEvents(runId, after); until then, the server's validation error."""
    _installed()
    _, base = stack.serve()
    stack.worker()
    key = env.create_key("frontend", admin=True)
    out = subprocess.run(
        ["node", "run.mjs", "workflows"],
        cwd=SUITE,
        env={**env.environ(), "CONVEYOR_URL": base, "CONVEYOR_KEY": key},
        capture_output=True,
        text=True,
        timeout=180,
    )
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1, out.stdout + out.stderr[-3000:]
    assert results[0]["ok"], json.dumps(results, indent=1)
    assert out.returncode == 0, out.stderr[-3000:]
