"""The GraphQL-over-HTTP spec's public audit suite (npm `graphql-http`, `serverAudits`) against a
real `conveyor serve`: every MUST and SHOULD audit passes (tests/http-audit/audit.mjs)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests import support

AUDIT_DIR = support.ROOT / "tests" / "http-audit"


def _node_modules() -> None:
    if (AUDIT_DIR / "node_modules" / "graphql-http").is_dir():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=AUDIT_DIR, check=True, capture_output=True
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_graphql_http_server_audits_pass(stack: support.Stack, env: support.Env) -> None:
    _node_modules()
    _, base = stack.serve()
    key = env.create_key("auditor")
    out = subprocess.run(
        ["node", "audit.mjs"],
        cwd=AUDIT_DIR,
        env={**env.environ(), "CONVEYOR_URL": f"{base}/graphql", "CONVEYOR_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    failures = [
        r for r in results if r["status"] != "ok" and r["name"].startswith(("MUST", "SHOULD"))
    ]
    assert not failures, json.dumps(failures, indent=1)
    assert out.returncode == 0, out.stderr
    musts = [r for r in results if r["name"].startswith("MUST")]
    shoulds = [r for r in results if r["name"].startswith("SHOULD")]
    assert len(musts) >= 10
    assert len(shoulds) >= 15
    # The optional (MAY) audits pass too, except where refusing is the safer choice.
    mays = {r["id"]: r["status"] for r in results if r["name"].startswith("MAY")}
    assert all(status == "ok" for status in mays.values()), mays
