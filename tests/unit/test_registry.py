"""Job-kind declaration rules, the field convention `@job_kind` applies, and the shipped kinds."""

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor import kinds
from conveyor.domain.limits import Limit, Rate
from conveyor.kinds import registry
from conveyor.kinds.compute import count_primes_in
from conveyor.kinds.registry import JobKindError, Registry, job_kind, kind_of, schedule


class In(BaseModel):
    x: int


async def handler(ctx: object, input: In) -> None:
    return None


@pytest.fixture(autouse=True)
def _forget_this_modules_declarations() -> Iterator[None]:
    """The kinds declared here (one name twice, on purpose) leave the process's declarations
    afterwards: a `Producer` without a registry, in another test of this process, takes
    every declared kind and would refuse the duplicate."""
    yield
    registry._DECLARED[:] = [k for k in registry._DECLARED if k.module != __name__]


@pytest.mark.parametrize("name", ["Reports.generate", "reports", "reports..x", "reports.Gen"])
def test_kind_names_must_be_dotted_lowercase(name: str) -> None:
    with pytest.raises(JobKindError, match="dotted lowercase"):
        job_kind(name, input=In)(handler)


def test_a_kind_cannot_be_registered_twice() -> None:
    async def other(ctx: object, input: In) -> None:
        return None

    first = kind_of(job_kind("twice.a", input=In)(handler))
    second = kind_of(job_kind("twice.a", input=In)(other))
    assert first is not None
    assert second is not None
    with pytest.raises(JobKindError, match=r"'twice\.a' is registered twice: by .*handler and by "):
        Registry([first, second])
    assert Registry([first, first]).names() == ["twice.a"]  # the same declaration, seen twice
    # The same function declared again (a module imported anew, a notebook cell run twice):
    # the later declaration takes the earlier one's place.
    again = kind_of(job_kind("twice.a", input=In)(handler))
    assert again is not None
    assert Registry([first, again])["twice.a"] is again


@pytest.mark.parametrize("bad", [dict, int, "In", In(x=1)], ids=["dict", "int", "str", "instance"])
def test_the_input_must_be_a_pydantic_model(bad: Any) -> None:
    with pytest.raises(JobKindError, match="must be a pydantic BaseModel subclass"):
        job_kind("bad.input", input=bad)


def test_the_handler_must_be_async() -> None:
    def blocking(ctx: object, input: In) -> None:
        return None

    with pytest.raises(JobKindError, match=r"handler of job kind 'sync\.kind' .* `async def`"):
        job_kind("sync.kind", input=In)(blocking)  # type: ignore[arg-type]


def test_the_convention_camel_case_on_the_wire_snake_case_in_python_unknown_refused() -> None:
    class Period(BaseModel):
        start_month: int

    class Report(BaseModel):
        account_id: int = Field(gt=0)
        period: Period | None = None
        periods: list[Period] = []

    class Summary(BaseModel):
        total_rows: int

    async def report(ctx: object, input: Report) -> Summary:
        return Summary(total_rows=1)

    kind = kind_of(job_kind("convention.report", input=Report)(report))
    assert kind is not None
    assert kind.result_model is Summary
    got = Report.model_validate({"accountId": 5, "periods": [{"startMonth": 2}]})
    assert (got.account_id, got.periods[0].start_month) == (5, 2)
    assert Report(account_id=6).account_id == 6  # Python code builds it by attribute name
    with pytest.raises(ValidationError) as refused:
        Report.model_validate({"accountId": 5, "acountId": 6, "period": {"startMonth": 1, "x": 0}})
    assert {(e["type"], e["loc"]) for e in refused.value.errors()} == {
        ("extra_forbidden", ("acountId",)),
        ("extra_forbidden", ("period", "x")),
    }
    schema = kind.json_schema()
    assert set(schema["properties"]) == {"accountId", "period", "periods"}
    assert schema["properties"]["accountId"]["title"] == "Account Id"
    assert schema["additionalProperties"] is False
    assert Summary(total_rows=3).model_dump(by_alias=True) == {"totalRows": 3}


def test_a_model_opts_out_of_the_convention_through_its_model_config() -> None:
    class Legacy(BaseModel):
        model_config = ConfigDict(alias_generator=None, extra="ignore")
        account_id: int

    class Partly(BaseModel):
        model_config = ConfigDict(extra="allow")
        account_id: int
        raw: str = Field(default="", alias="RAW")

    async def legacy(ctx: object, input: Legacy) -> None:
        return None

    async def partly(ctx: object, input: Partly) -> None:
        return None

    job_kind("optout.legacy", input=Legacy)(legacy)
    job_kind("optout.partly", input=Partly)(partly)
    assert Legacy.model_validate({"account_id": 1, "unknown": 2}).account_id == 1
    got = Partly.model_validate({"accountId": 1, "RAW": "r", "more": 3})
    assert (got.account_id, got.raw, got.model_extra) == (1, "r", {"more": 3})


def test_shipped_kinds_and_their_queues() -> None:
    r = kinds.load(kinds.DEMO_MODULES)
    assert {k.name: k.queue for k in r.all()} == {
        "compute.primes": "cpu",
        "demo.flaky": "default",
        "demo.join": "default",
        "demo.keyed": "default",
        "demo.noop": "default",
        "demo.sleep": "default",
        "demo.split": "default",
    }
    assert [w.name for w in r.workflows.all()] == ["demo.flaky_pipeline", "demo.pipeline"]
    schema = r["demo.sleep"].json_schema()
    assert schema["properties"]["steps"]["maximum"] == 10_000
    assert "stepSeconds" in schema["properties"]
    assert kinds.load(["conveyor.kinds.compute"]).names() == ["compute.primes"]


@pytest.mark.parametrize(
    ("lo", "hi", "expected"), [(0, 10, 4), (0, 100, 25), (10, 20, 4), (0, 2, 0)]
)
def test_segmented_sieve(lo: int, hi: int, expected: int) -> None:
    assert count_primes_in(lo, hi) == expected


def test_segments_add_up() -> None:
    assert count_primes_in(0, 1_000_000) == 78_498
    assert count_primes_in(0, 400_000) + count_primes_in(400_000, 1_000_000) == 78_498


def test_limits_and_schedules_are_declared_next_to_the_kind() -> None:
    keyed = kinds.load(kinds.DEMO_MODULES).get("demo.keyed")
    assert keyed is not None
    assert keyed.key_limit == Limit(1)
    model = keyed.input_model.model_validate({"account": "acme"})
    assert keyed.key_of(model) == "acme"

    async def handler(ctx: object, input: object) -> None:
        return None

    k = kind_of(
        job_kind(
            "t.limited",
            input=keyed.input_model,
            max_concurrency=5,
            rate="10/m",
            concurrency_key=lambda i: f"acct-{i.account}",
            schedules=[schedule("nightly", cron="0 3 * * *", timezone="Europe/Berlin")],
        )(handler)
    )
    assert k is not None
    assert k.limit == Limit(5, Rate(10, 60.0))
    assert k.key_of(model) == "acct-acme"
    assert [s.name for s in k.schedules] == ["nightly"]
    with pytest.raises(JobKindError, match="schedule 'bad'"):
        job_kind("t.bad", input=keyed.input_model, schedules=[schedule("bad", cron="61 * * * *")])(
            handler
        )
    with pytest.raises(JobKindError, match="need a concurrency_key"):
        job_kind("t.bad", input=keyed.input_model, key_concurrency=1)(handler)
    with pytest.raises(JobKindError, match="not a field"):
        job_kind("t.bad", input=keyed.input_model, concurrency_key="nope")(handler)
