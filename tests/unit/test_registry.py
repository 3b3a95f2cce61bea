"""Job-kind registration rules and the shipped kinds."""

import pytest
from pydantic import BaseModel

from conveyor import kinds
from conveyor.kinds.compute import count_primes_in
from conveyor.kinds.registry import Registry, job_kind


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
        "demo.join": "default",
        "demo.noop": "default",
        "demo.sleep": "default",
        "demo.split": "default",
    }
    assert [w.name for w in r.workflows.all()] == ["demo.flaky_pipeline", "demo.pipeline"]
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
