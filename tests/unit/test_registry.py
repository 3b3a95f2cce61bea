"""Job-kind registration rules and the shipped kinds."""

import pytest
from pydantic import BaseModel

from conveyor import kinds
from conveyor.domain.limits import Limit, Rate
from conveyor.kinds.compute import count_primes_in
from conveyor.kinds.registry import Registry, job_kind, schedule


class In(BaseModel):
    x: int


async def handler(ctx: object, input: In) -> None:
    return None


@pytest.mark.parametrize("name", ["Reports.generate", "reports", "reports..x", "reports.Gen"])
def test_kind_names_must_be_dotted_lowercase(name: str) -> None:
    with pytest.raises(ValueError, match="dotted lowercase"):
        job_kind(name, input=In, into=Registry())(handler)


def test_a_kind_cannot_be_registered_twice() -> None:
    r = Registry()
    job_kind("a.b", input=In, into=r)(handler)
    with pytest.raises(ValueError, match="twice"):
        job_kind("a.b", input=In, into=r)(handler)


def test_shipped_kinds_and_their_queues() -> None:
    r = kinds.load()
    assert {k.name: k.queue for k in r.all()} == {
        "compute.primes": "cpu",
        "demo.flaky": "default",
        "demo.keyed": "default",
        "demo.noop": "default",
        "demo.sleep": "default",
    }
    schema = r.get("demo.sleep").json_schema()  # type: ignore[union-attr]
    assert schema["properties"]["steps"]["maximum"] == 10_000
    assert "stepSeconds" in schema["properties"]


@pytest.mark.parametrize(
    ("lo", "hi", "expected"), [(0, 10, 4), (0, 100, 25), (10, 20, 4), (0, 2, 0)]
)
def test_segmented_sieve(lo: int, hi: int, expected: int) -> None:
    assert count_primes_in(lo, hi) == expected


def test_segments_add_up() -> None:
    assert count_primes_in(0, 1_000_000) == 78_498
    assert count_primes_in(0, 400_000) + count_primes_in(400_000, 1_000_000) == 78_498


def test_limits_and_schedules_are_declared_next_to_the_kind() -> None:
    keyed = kinds.load().get("demo.keyed")
    assert keyed is not None
    assert keyed.key_limit == Limit(1)
    model = keyed.input_model.model_validate({"account": "acme"})
    assert keyed.key_of(model) == "acme"

    r = Registry()

    async def handler(ctx: object, input: object) -> None:
        return None

    job_kind(
        "t.limited",
        input=keyed.input_model,
        into=r,
        max_concurrency=5,
        rate="10/m",
        concurrency_key=lambda i: f"acct-{i.account}",
        schedules=[schedule("nightly", cron="0 3 * * *", timezone="Europe/Berlin")],
    )(handler)
    k = r.get("t.limited")
    assert k is not None
    assert k.limit == Limit(5, Rate(10, 60.0))
    assert k.key_of(model) == "acct-acme"
    assert [s.name for s in k.schedules] == ["nightly"]
    with pytest.raises(ValueError, match="schedule 'bad'"):
        job_kind(
            "t.bad", input=keyed.input_model, into=r, schedules=[schedule("bad", cron="61 * * * *")]
        )(handler)
    with pytest.raises(ValueError, match="need a concurrency_key"):
        job_kind("t.bad", input=keyed.input_model, into=r, key_concurrency=1)(handler)
    with pytest.raises(ValueError, match="not a field"):
        job_kind("t.bad", input=keyed.input_model, into=r, concurrency_key="nope")(handler)
