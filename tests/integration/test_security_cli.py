"""The key lifecycle from the console: `conveyor` run as a process against the test database,
its keys then used through the (in-process) API."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests import support
from tests.integration.conftest import Api


def _run(env: support.Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        env=env.environ(),
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _key(env: support.Env, *args: str) -> str:
    return env.cli("create-api-key", *args).strip().splitlines()[-1]


async def test_keys_are_created_listed_and_revoked_from_the_console(
    api: Api, env: support.Env
) -> None:
    env.cli("create-tenant", "--name", "acme")
    key = _key(env, "--name", "ci", "--tenant", "acme", "--role", "operator")
    ci = api.client(key)
    me = (await ci("{ me { id name role } }"))["me"]
    assert (me["name"], me["role"]) == ("ci", "OPERATOR")

    listed = env.cli("list-api-keys", "--tenant", "acme")
    (line,) = listed.strip().splitlines()
    assert line.split()[:3] == [me["id"], "operator", "active"]
    assert key.rsplit("_", 1)[-1] not in listed  # never the secret

    revoked = env.cli("revoke-api-key", "--id", me["id"])
    assert f"revoked API key 'ci' ({me['id']})" in revoked
    assert (await ci.raw("{ me { id } }")).status_code == 401
    assert env.cli("list-api-keys", "--tenant", "acme").split()[2] == "revoked"
    audit = await env.sql("SELECT actor_name FROM audit_log WHERE action = 'key.revoke'")
    assert [r["actor_name"] for r in audit] == ["cli"]

    again = _run(env, "revoke-api-key", "--id", me["id"])
    assert (again.returncode, again.stderr.strip()) == (2, f"conveyor: no active key {me['id']}")
    assert "not a key id" in _run(env, "revoke-api-key", "--id", "nope").stderr
    assert "no tenant 'nope'" in _run(env, "list-api-keys", "--tenant", "nope").stderr


async def test_keys_can_expire(api: Api, env: support.Env) -> None:
    key = _key(env, "--name", "temp", "--expires-in-days", "0.5")
    assert (await api.client(key)("{ me { name } }"))["me"]["name"] == "temp"
    row = (await env.sql("SELECT expires_at FROM api_keys WHERE name = 'temp'"))[0]
    assert abs(row["expires_at"] - (datetime.now(UTC) + timedelta(hours=12))) < timedelta(minutes=5)
    assert "expires " in env.cli("list-api-keys")
    await env.sql("UPDATE api_keys SET expires_at = now() WHERE name = 'temp'")
    assert (await api.client(key).raw("{ me { name } }")).status_code == 401


@pytest.mark.parametrize("days", ["0", "-1", "nan", "100000"])
def test_expires_in_days_must_be_positive_and_bounded(env: support.Env, days: str) -> None:
    out = _run(env, "create-api-key", "--name", "bad", "--expires-in-days", days)
    assert out.returncode == 2
    assert "--expires-in-days must be > 0 and <= 3650" in out.stderr


async def test_create_superuser(api: Api, env: support.Env) -> None:
    env.cli("create-tenant", "--name", "acme")
    out = env.cli("create-superuser", "--name", "root", "--tenant", "acme")
    assert "created superuser API key 'root'" in out
    root = api.client(out.strip().splitlines()[-1])
    me = (await root("{ me { role isSuperuser tenantId } }"))["me"]
    assert (me["role"], me["isSuperuser"]) == ("ADMIN", True)
    assert {t["name"] for t in (await root("{ tenants { name } }"))["tenants"]} == {
        "acme",
        "default",
    }
    made = await root('mutation { createTenant(name: "initech") { __typename } }')
    assert made["createTenant"]["__typename"] == "Tenant"
