"""The job-kind registry: `@job_kind(...)` turns a typed async handler into a job kind.

class Resize(BaseModel):
    url: str
    width: int = Field(gt=0)

@job_kind("images.resize", input=Resize, queue="default", max_attempts=5, timeout=120,
          max_concurrency=20, concurrency_key="account_id", key_concurrency=1, rate="10/m",
          schedules=[schedule("nightly", cron="0 3 * * *", timezone="Europe/Berlin",
                              input={"url": "https://example.com/a.png", "width": 64})])
async def resize(ctx: JobContext, input: Resize) -> dict[str, int]:
    await ctx.progress(0.5, "downloaded")
    ...

Limits and schedules declared here are written to PostgreSQL when a process starts
(ADR-0022); the API can change limits at run time and pause or trigger schedules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from conveyor.domain.limits import Limit, Rate
from conveyor.domain.schedules import Misfire, Options, ScheduleSpec, validate_spec

if TYPE_CHECKING:
    from conveyor.kinds.context import JobContext

#: `area.verb`: lowercase dotted words (ADR-0011).
KIND_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: Queue names: lowercase word, may contain dashes (ADR-0011).
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

Handler = Callable[["JobContext", Any], Coroutine[Any, Any, Any]]
#: Computes a job's concurrency key from its validated input (None: no key, no per-key limit).
KeyFunction = Callable[[Any], "str | int | None"]


@dataclass(frozen=True)
class JobKind:
    name: str
    input_model: type[BaseModel]
    handler: Handler
    queue: str
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float | None
    backoff_cap_seconds: float | None
    description: str
    #: Run-time limits declared in code (ADR-0022): the kind's, and each key's.
    limit: Limit | None = None
    key_limit: Limit | None = None
    concurrency_key: KeyFunction | None = None
    schedules: tuple[ScheduleSpec, ...] = ()

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema(by_alias=True)

    def key_of(self, model: BaseModel) -> str | None:
        """The job's concurrency key (what per-key limits count by), or None."""
        if self.concurrency_key is None:
            return None
        value = self.concurrency_key(model)
        return None if value is None else str(value)[:200]


class Registry:
    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def add(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def all(self) -> list[JobKind]:
        return sorted(self._kinds.values(), key=lambda k: k.name)

    def queues(self) -> list[str]:
        return sorted({k.queue for k in self._kinds.values()})


#: The process-wide registry the decorator fills at import time (like taskiq's task registry).
registry = Registry()


def job_kind(
    name: str,
    *,
    input: type[BaseModel],
    queue: str = "default",
    max_attempts: int = 3,
    timeout: float = 300.0,
    backoff_base: float | None = None,
    backoff_cap: float | None = None,
    description: str | None = None,
    into: Registry | None = None,
    max_concurrency: int | None = None,
    rate: str | None = None,
    concurrency_key: str | KeyFunction | None = None,
    key_concurrency: int | None = None,
    key_rate: str | None = None,
    schedules: list[ScheduleSpec] | tuple[ScheduleSpec, ...] = (),
) -> Callable[[Handler], Handler]:
    """Register a handler as a job kind.

    `max_concurrency` / `rate` limit the kind's running jobs and starts across all workers;
    `concurrency_key` (an input field name, or a function of the validated input) with
    `key_concurrency` / `key_rate` limits them per key (e.g. one running job per account).
    `schedules`: recurring jobs of this kind (`schedule(...)`), synced at start-up."""
    if not KIND_NAME.match(name):
        raise ValueError(
            f"job kind name {name!r} must be dotted lowercase words, e.g. 'reports.generate'"
        )
    if not QUEUE_NAME.match(queue):
        raise ValueError(f"queue name {queue!r} must match {QUEUE_NAME.pattern}")
    if max_attempts < 1 or timeout <= 0:
        raise ValueError("max_attempts must be >= 1 and timeout > 0")
    for label, value in (
        ("max_concurrency", max_concurrency),
        ("key_concurrency", key_concurrency),
    ):
        if value is not None and value < 1:
            raise ValueError(f"{label} must be >= 1")
    if (key_concurrency is not None or key_rate is not None) and concurrency_key is None:
        raise ValueError("key_concurrency and key_rate need a concurrency_key")
    key_fn: KeyFunction | None
    if isinstance(concurrency_key, str):
        field_name = concurrency_key

        def key_fn(model: Any) -> str | int | None:
            return getattr(model, field_name)  # type: ignore[no-any-return]

        if field_name not in input.model_fields:
            raise ValueError(f"concurrency_key {field_name!r} is not a field of {input.__name__}")
    else:
        key_fn = concurrency_key
    limit = _limit(max_concurrency, rate)
    key_limit = _limit(key_concurrency if key_concurrency is not None else 1, key_rate)
    names = [s.name for s in schedules]
    if len(set(names)) != len(names):
        raise ValueError(f"job kind {name!r} declares two schedules with the same name")
    for spec in schedules:
        problems = validate_spec(spec)
        if problems:
            raise ValueError(
                f"schedule {spec.name!r} of {name!r}: "
                + "; ".join(f"{'.'.join(p.path)}: {p.message}" for p in problems)
            )

    def register(handler: Handler) -> Handler:
        doc = description if description is not None else (handler.__doc__ or "").strip()
        (into or registry).add(
            JobKind(
                name=name,
                input_model=input,
                handler=handler,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout,
                backoff_base_seconds=backoff_base,
                backoff_cap_seconds=backoff_cap,
                description=doc.splitlines()[0] if doc else "",
                limit=limit,
                key_limit=key_limit if key_fn is not None else None,
                concurrency_key=key_fn,
                schedules=tuple(schedules),
            )
        )
        return handler

    return register


def _limit(max_running: int | None, rate: str | None) -> Limit | None:
    if max_running is None and rate is None:
        return None
    return Limit(max_running, Rate.parse(rate) if rate is not None else None)


def schedule(
    name: str,
    *,
    cron: str | None = None,
    every: float | None = None,
    timezone: str = "UTC",
    input: dict[str, Any] | None = None,
    jitter: float = 0.0,
    misfire: str = "RUN_ONCE",
    misfire_grace: float = 60.0,
    max_catchup: int = 100,
    priority: int | None = None,
    max_attempts: int | None = None,
    timeout: float | None = None,
) -> ScheduleSpec:
    """A recurring job of the kind it is given to (`@job_kind(schedules=[...])`): a cron
    expression (5 fields, or 6 with seconds first) in `timezone`, or every `every` seconds.
    Its name is unique in the tenant; code owns its definition (ADR-0022)."""
    return ScheduleSpec(
        name=name,
        cron=cron,
        every_seconds=every,
        timezone=timezone,
        input=dict(input or {}),
        jitter_seconds=jitter,
        misfire=Misfire(misfire),
        misfire_grace_seconds=misfire_grace,
        max_catchup=max_catchup,
        options=Options(priority=priority, max_attempts=max_attempts, timeout_seconds=timeout),
    )
