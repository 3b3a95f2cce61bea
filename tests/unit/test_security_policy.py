"""The admission policy and role scopes as pure logic."""

from __future__ import annotations

import time
import uuid

import pytest

from conveyor.domain import policy
from conveyor.domain.errors import Forbidden, InvalidInput, Unauthenticated
from conveyor.domain.models import Principal
from conveyor.services import auth

TENANT = uuid.uuid4()


def _req(role: str = "submitter", kind: str = "demo.sleep", size: int = 10) -> policy.Request:
    return policy.Request("submit", role, kind, size)


def test_rules_apply_in_order_and_name_the_deciding_rule() -> None:
    p = policy.Policy.from_json(
        {
            "roleKinds": {"submitter": ["demo.*"]},
            "maxPayloadBytes": 100,
            "maxWaitingJobs": 3,
            "maxRunningJobs": 2,
        },
        version=7,
    )
    free = policy.Usage()
    assert policy.evaluate(p, _req(), free).rule == "allow"
    assert policy.evaluate(p, _req(role="viewer"), free).rule == "role.readOnly"
    assert policy.evaluate(p, _req(kind="compute.primes"), free).rule == "role.kinds"
    assert policy.evaluate(p, _req(size=101), free).rule == "payload.maxBytes"
    waiting = policy.evaluate(p, _req(), policy.Usage(waiting=2), admitted_before=1)
    assert (waiting.rule, waiting.retry_after_seconds) == ("tenant.maxWaitingJobs", 5.0)
    # maxRunningJobs is a run-time limit (ADR-0022): it holds jobs QUEUED, never refuses.
    assert policy.evaluate(p, _req(), policy.Usage(running=2)).rule == "allow"
    assert p.version == 7


def test_policy_documents_round_trip_and_bad_ones_list_every_problem() -> None:
    p = policy.Policy.from_json({"submitRatePerSecond": 2.5, "submitBurst": 10})
    assert policy.Policy.from_json(p.to_json()) == p
    with pytest.raises(InvalidInput) as bad:
        policy.Policy.from_json(
            {"roleKinds": {"god": ["*"], "viewer": "x"}, "maxWaitingJobs": 1.5, "nope": 1}
        )
    paths = {f.path for f in bad.value.field_errors}
    assert paths == {("nope",), ("roleKinds", "god"), ("roleKinds", "viewer"), ("maxWaitingJobs",)}


def test_scopes_per_role_and_token() -> None:
    key = uuid.uuid4()
    job = uuid.uuid4()

    def who(role: str, token: str | None = None) -> Principal:
        return Principal(id=key, name="k", tenant_id=TENANT, role=role, token_scope=token)

    assert policy.read_scope(who("admin")) == policy.Scope(TENANT)
    assert policy.read_scope(who("viewer")) == policy.Scope(TENANT)
    assert policy.read_scope(who("submitter")) == policy.Scope(TENANT, owner_id=key)
    assert policy.read_scope(who("viewer", f"job:{job}")) == policy.Scope(TENANT, job_id=job)
    with pytest.raises(Forbidden):
        policy.write_scope(who("viewer"), policy.Action.CANCEL)
    with pytest.raises(Forbidden):
        policy.write_scope(who("admin", "tenant"), policy.Action.CANCEL)
    with pytest.raises(Forbidden):
        policy.require(who("operator"), policy.Action.MANAGE_KEYS)
    with pytest.raises(Forbidden):
        policy.require_superuser(who("admin"))


def test_tokens_are_signed_and_expire() -> None:
    secret = "s" * 40
    claims = {"key": str(uuid.uuid4()), "tenant": str(TENANT), "scope": "tenant"}
    token = auth.sign_token(secret, {**claims, "exp": int(time.time()) + 60})
    assert auth.verify_token(secret, token)["scope"] == "tenant"
    with pytest.raises(Unauthenticated):
        auth.verify_token("t" * 40, token)
    body, _, sig = token.partition(".")
    with pytest.raises(Unauthenticated):
        auth.verify_token(secret, body + "x." + sig)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify_token(secret, token, now=time.time() + 120)
