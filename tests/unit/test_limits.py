"""Which jobs of a claim batch may start (ADR-0022), decided without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain import limits
from conveyor.domain import waiting as w
from conveyor.domain.limits import Candidate, Limit, Rate
from conveyor.domain.states import JobStatus, Priority

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TENANT = uuid.uuid4()


def _job(n: int, key: str | None = None, priority: int = 1, kind: str = "k.x") -> Candidate:
    return Candidate(
        uuid.UUID(int=n), kind, "default", TENANT, key, priority, NOW + timedelta(seconds=n)
    )


def test_a_limit_admits_by_count_in_priority_then_age_order() -> None:
    jobs = [_job(1), _job(2), _job(3, priority=0), _job(4)]
    d = limits.decide(jobs, {"kind:k.x": Limit(3)}, {"kind:k.x": 1}, {}, NOW)
    assert d.admitted == [uuid.UUID(int=3), uuid.UUID(int=1)]
    assert d.blocked == {uuid.UUID(int=2): "kind:k.x", uuid.UUID(int=4): "kind:k.x"}


def test_a_per_key_limit_counts_each_key_apart() -> None:
    jobs = [_job(1, "a"), _job(2, "a"), _job(3, "b"), _job(4, None)]
    d = limits.decide(jobs, {"key:k.x": Limit(1)}, {"key:k.x:b": 1}, {}, NOW)
    assert d.admitted == [uuid.UUID(int=1), uuid.UUID(int=4)]
    assert d.blocked == {uuid.UUID(int=2): "key:k.x:a", uuid.UUID(int=3): "key:k.x:b"}


def test_every_limit_of_a_job_must_have_room() -> None:
    tenant = limits.tenant_scope(TENANT)
    jobs = [_job(1), _job(2, kind="k.y")]
    d = limits.decide(jobs, {tenant: Limit(1), "kind:k.y": Limit(5)}, {}, {}, NOW)
    assert d.admitted == [uuid.UUID(int=1)]
    assert d.blocked == {uuid.UUID(int=2): tenant}


def test_a_rate_defers_to_the_slot_and_bursts_up_to_its_count() -> None:
    rate = Rate.parse("2/m")
    assert (rate.interval, str(rate)) == (30.0, "2/m")
    jobs = [_job(1), _job(2), _job(3)]
    d = limits.decide(jobs, {"kind:k.x": Limit(None, rate)}, {}, {}, NOW)
    assert d.admitted == [uuid.UUID(int=1), uuid.UUID(int=2)]
    scope, until = d.deferred[uuid.UUID(int=3)]
    assert (scope, until) == ("kind:k.x", NOW + timedelta(seconds=30))
    assert d.tats == {"kind:k.x": NOW + timedelta(seconds=60)}


@pytest.mark.parametrize("text", ["10", "0/m", "x/m", "5/y", "1/0s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def _facts(**kw: object) -> w.Facts:
    base: dict[str, object] = {
        "status": JobStatus.QUEUED,
        "queue": "default",
        "kind": "k.x",
        "priority": Priority.NORMAL,
        "now": NOW,
        "run_at": None,
        "next_run_at": None,
        "workers_serving": 1,
    }
    base.update(kw)
    return w.Facts(**base)  # type: ignore[arg-type]


def test_waiting_reasons_in_order_of_what_decides() -> None:
    full = w.LimitState("kind:k.x", Limit(1), 1, [uuid.UUID(int=9)])
    paused = (NOW, "ops")
    assert w.decide(_facts(status=JobStatus.RUNNING)) is None
    reason = w.decide(_facts(paused=paused, workers_serving=0, limits=[full]))
    assert reason is not None
    assert reason.code is w.WaitCode.QUEUE_PAUSED
    reason = w.decide(_facts(workers_serving=0, limits=[full]))
    assert reason is not None
    assert reason.code is w.WaitCode.NO_WORKER_FOR_QUEUE
    reason = w.decide(_facts(limits=[full]))
    assert reason is not None
    assert (reason.code, reason.holders) == (w.WaitCode.CONCURRENCY_LIMIT, [uuid.UUID(int=9)])
    reason = w.decide(_facts(ahead=5000))
    assert reason is not None
    assert (reason.code, reason.ahead, reason.ahead_exact) == (w.WaitCode.QUEUED, 1000, False)
    assert "1,000+ jobs ahead" in reason.message
