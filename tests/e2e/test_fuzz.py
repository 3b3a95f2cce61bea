"""Fuzzing real `conveyor serve` + `conveyor worker` processes with operations generated from
the live schema (tests/fuzzing.py), as an admin and as a viewer, for `FUZZ_SECONDS` (45 by
default; `make fuzz` runs 600). Bad input must never become an internal error: no 5xx, no
INTERNAL_SERVER_ERROR, no traceback in an answer or at ERROR in the API's log, and the server
answers a health query afterwards."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tests import fuzzing, support

log = logging.getLogger(__name__)

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "45"))
#: Examples per hypothesis run; runs repeat until the time is up (checked between runs: an
#: example that stopped early would look like a flaky strategy to hypothesis).
CHUNK = 20

SEED = """mutation($i: [SubmitJobInput!]!) { submitJobs(inputs: $i) {
  __typename ... on Job { id } } }"""
KNOWN = """{ jobKinds { name queue inputSchema } me { tenantId }
  jobs(first: 5) { edges { cursor } } auditLog(first: 5) { edges { cursor node { target } } } }"""
NEW_KEY = """mutation($n: String!) { createApiKey(name: $n, role: SUBMITTER) {
  ... on CreatedApiKey { apiKey { id } } } }"""


def _known_values(admin: httpx.Client) -> tuple[list[str], list[str]]:
    """Strings the server knows (for `fuzzing.spoiled`), and payload keys of its job kinds."""
    jobs = admin.post(
        "/graphql",
        json={
            "query": SEED,
            "variables": {
                "i": [
                    {"kind": "demo.noop", "payload": {}, "idempotencyKey": "fuzz-1"},
                    {"kind": "demo.flaky", "payload": {"permanent": True}},
                    {"kind": "demo.sleep", "payload": {"steps": 1, "stepSeconds": 0}},
                ]
            },
        },
    ).json()["data"]["submitJobs"]
    known = admin.post("/graphql", json={"query": KNOWN}).json()["data"]
    # A key the fuzzer may revoke: never its own.
    target = admin.post("/graphql", json={"query": NEW_KEY, "variables": {"n": "fuzz-target"}})
    pool = [j["id"] for j in jobs] + [known["me"]["tenantId"], "fuzz-1", "job.", "job.submit"]
    pool.append(target.json()["data"]["createApiKey"]["apiKey"]["id"])
    pool += [k["name"] for k in known["jobKinds"]] + [k["queue"] for k in known["jobKinds"]]
    pool += [e["cursor"] for e in known["jobs"]["edges"]]
    pool += [e["cursor"] for e in known["auditLog"]["edges"]]
    pool += [e["node"]["target"] for e in known["auditLog"]["edges"] if e["node"]["target"]]
    keys = sorted({p for k in known["jobKinds"] for p in k["inputSchema"].get("properties", {})})
    return sorted(set(pool)), keys


def _api_errors(api: support.Component) -> list[str]:
    """Lines the API logged at ERROR or above, or with a traceback."""
    found = []
    for line in api.output().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if record.get("level") in ("error", "critical") or "exception" in record:
            found.append(line[:3000])
    return found


@pytest.mark.timeout(FUZZ_SECONDS + 300)  # start-up, and shrinking a finding against the server
def test_generated_operations_never_meet_an_internal_error(
    stack: support.Stack, env: support.Env, tmp_path: Path
) -> None:
    # Hypothesis caches what it learns (constants, Unicode tables) under `.hypothesis/` in
    # the working directory even without an example database: keep it out of the repository.
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    # Real processes: hypothesis watches the global `random` module while it draws, and an
    # in-process server (jittered retries, backoff) would use it from its own threads.
    api, base = stack.serve(process=True)
    stack.worker(process=True)
    admin_key = env.create_key("fuzz-admin", admin=True)
    viewer_key = env.cli("create-api-key", "--name", "fuzz-viewer", "--role", "viewer").split()[-1]
    targets = {
        "admin": fuzzing.Target(base, admin_key),
        "viewer": fuzzing.Target(base, viewer_key),
    }
    schema = fuzzing.introspect(targets["admin"].http)
    pool, payload_keys = _known_values(targets["admin"].http)
    strings = fuzzing.spoiled(pool)
    scalars = fuzzing.custom_scalars(payload_keys, strings)
    operations = fuzzing.operations(schema, scalars)
    subscriptions = fuzzing.subscriptions(schema, scalars)
    assert subscriptions is not None
    deadline = time.monotonic() + FUZZ_SECONDS
    examples = 0

    @settings(
        max_examples=CHUNK,
        database=None,  # nothing written under the repository
        deadline=None,  # a round trip to a shared 2-core machine varies; time is bounded above
        # Documents from a large schema are big and slow to generate: that is the point.
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        print_blob=True,
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        nonlocal examples
        examples += 1
        role = data.draw(st.sampled_from(sorted(targets)), label="role")
        kind = data.draw(st.sampled_from(["http", "ws", "subscription"]), label="transport")
        document = data.draw(subscriptions if kind == "subscription" else operations)
        document = fuzzing.replace_strings(
            document,
            lambda s: data.draw(strings) if data.draw(st.booleans(), label="known value") else s,
        )
        variables: dict[str, Any] = {}
        if fuzzing.needs_variables(document) or data.draw(st.booleans(), label="variables"):
            document, variables = fuzzing.hoist(document, schema)
        query = graphql.print_ast(document)
        target = targets[role]
        if kind == "http":
            problem = target.http_request(query, variables)
        else:
            problem = target.ws_request(query, variables, subscription=kind == "subscription")
        assert problem is None, str(fuzzing.Finding(f"{kind} as {role}", query, variables, problem))

    try:
        while time.monotonic() < deadline:
            one()
        # The server still serves, both principals, after all that.
        for role, target in targets.items():
            me = target.http.post("/graphql", json={"query": "{ me { name } }"})
            assert me.status_code == 200, (role, me.text)
            assert me.json()["data"]["me"]["name"] == f"fuzz-{role}"
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        assert api.alive
        assert _api_errors(api) == []
    finally:
        for role, target in targets.items():
            log.info("fuzz outcomes as %s: %s", role, dict(target.outcomes.most_common()))
            target.close()
    log.info("fuzzed %d examples in %.0f s", examples, FUZZ_SECONDS)
    assert examples > 0
