"""`@job_kind(...)` turns a typed async handler into a job kind; a `Registry` is the set of kinds
one process runs or accepts (`conveyor.kinds.load` builds it from the job modules).

class Resize(BaseModel):
    image_url: str                      # `imageUrl` on the wire
    width: int = Field(gt=0)

@job_kind("images.resize", input=Resize, queue="default", max_attempts=5, timeout=120,
          max_concurrency=20, concurrency_key="account_id", key_concurrency=1, rate="10/m",
          schedules=[schedule("nightly", cron="0 3 * * *", timezone="Europe/Berlin",
                              input={"imageUrl": "https://example.com/a.png", "width": 64})])
async def resize(ctx: JobContext, input: Resize) -> dict[str, int]:
    await ctx.progress(0.5, "downloaded")
    ...

Declaring a kind only records it (`declared()`); a process runs the kinds of the modules it
was told to load, so an API and a worker, or two workers, may load different sets.

Limits and schedules declared here are written to PostgreSQL when a process starts
(ADR-0022); the API can change limits at run time and pause or trigger schedules.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
import typing
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from conveyor.domain.errors import InvalidWorkflow, JobKindError
from conveyor.domain.limits import Limit, Rate
from conveyor.domain.schedules import Misfire, Options, ScheduleSpec, validate_spec
from conveyor.kinds.workflows import Map, Step, Workflow, WorkflowRegistry, validate

if TYPE_CHECKING:
    from conveyor.kinds.context import JobContext

#: `area.verb`: lowercase dotted words (ADR-0011).
KIND_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: Queue names: lowercase word, may contain dashes (ADR-0011).
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
#: The attribute `@job_kind` sets on the handler it declares.
KIND_ATTRIBUTE = "__conveyor_kind__"

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
    #: The handler's return annotation when it is a pydantic model (the job's typed result).
    result_model: type[BaseModel] | None = None
    #: Where the handler is defined (`module.qualname`): named in errors about this kind.
    origin: str = ""
    #: Run-time limits declared in code (ADR-0022): the kind's, and each key's.
    limit: Limit | None = None
    key_limit: Limit | None = None
    concurrency_key: KeyFunction | None = None
    schedules: tuple[ScheduleSpec, ...] = ()

    @property
    def module(self) -> str:
        return self.origin.rpartition(":")[0]

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema(by_alias=True)

    def key_of(self, model: BaseModel) -> str | None:
        """The job's concurrency key (what per-key limits count by), or None."""
        if self.concurrency_key is None:
            return None
        value = self.concurrency_key(model)
        return None if value is None else str(value)[:200]


class Registry:
    """The kinds of one process, by name, and the workflows built from them."""

    def __init__(self, kinds: Iterable[JobKind] = (), workflows: Iterable[Workflow] = ()) -> None:
        self._kinds: dict[str, JobKind] = {}
        self.workflows = WorkflowRegistry()
        for kind in kinds:
            self.add(kind)
        for wf in workflows:
            self.add_workflow(wf)

    def add(self, kind: JobKind) -> None:
        """Add `kind`; JobKindError when another function already has its name. The same
        function declared again (its module imported anew, a notebook cell run twice) takes
        the earlier declaration's place."""
        found = self._kinds.get(kind.name)
        if found is not None and found is not kind and found.origin != kind.origin:
            raise JobKindError(
                f"job kind {kind.name!r} is registered twice: by {found.origin} "
                f"and by {kind.origin}"
            )
        self._kinds[kind.name] = kind

    def add_workflow(self, wf: Workflow) -> None:
        """Add a workflow whose every step runs a kind of this registry (InvalidWorkflow
        otherwise: the process did not load the module of one of its kinds)."""
        missing = sorted({s.kind for s in wf.steps if s.kind not in self._kinds})
        if missing:
            raise InvalidWorkflow(
                f"workflow {wf.name!r} ({wf.module}) runs job kind(s) {', '.join(missing)} "
                "that no loaded job module defines: add their modules to JOB_MODULES/--jobs"
            )
        self.workflows.add(wf)

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def __getitem__(self, name: str) -> JobKind:
        return self._kinds[name]

    def __len__(self) -> int:
        return len(self._kinds)

    def all(self) -> list[JobKind]:
        return sorted(self._kinds.values(), key=lambda k: k.name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def queues(self) -> list[str]:
        return sorted({k.queue for k in self._kinds.values()})


#: Every kind declared in this process so far, in order (`@job_kind` appends at import time,
#: as taskiq's and celery's task decorators do); `conveyor.kinds.load` picks from it.
_DECLARED: list[JobKind] = []


def declared() -> list[JobKind]:
    return list(_DECLARED)


def kind_of(handler: object) -> JobKind | None:
    """The kind `@job_kind` declared with this handler, if any."""
    found = getattr(handler, KIND_ATTRIBUTE, None)
    return found if isinstance(found, JobKind) else None


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
    max_concurrency: int | None = None,
    rate: str | None = None,
    concurrency_key: str | KeyFunction | None = None,
    key_concurrency: int | None = None,
    key_rate: str | None = None,
    schedules: list[ScheduleSpec] | tuple[ScheduleSpec, ...] = (),
    into: Registry | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a job kind. `input` gets Conveyor's field convention (`apply_convention`).
    `into`: a registry of your own to add it to *instead of* the process's declarations
    (tests and embedding code build their own): such a kind is not among `declared()`, so
    neither `conveyor.kinds.load` nor a `Producer` without a registry sees it unless its
    module exposes the handler by name.

    `max_concurrency` / `rate` limit the kind's running jobs and starts across all workers;
    `concurrency_key` (an input field's Python name, or a function of the validated input)
    with `key_concurrency` / `key_rate` limits them per key (e.g. one running job per account).
    `schedules`: recurring jobs of this kind (`schedule(...)`), synced at start-up."""
    if not KIND_NAME.match(name):
        raise JobKindError(
            f"job kind name {name!r} must be dotted lowercase words, e.g. 'reports.generate'"
        )
    if not QUEUE_NAME.match(queue):
        raise JobKindError(
            f"queue name {queue!r} of job kind {name!r} must match {QUEUE_NAME.pattern}"
        )
    if max_attempts < 1 or timeout <= 0:
        raise JobKindError(f"job kind {name!r}: max_attempts must be >= 1 and timeout > 0")
    if not (isinstance(input, type) and issubclass(input, BaseModel)):
        raise JobKindError(
            f"the input of job kind {name!r} must be a pydantic BaseModel subclass, "
            f"not {_describe(input)}"
        )

    for label, value in (
        ("max_concurrency", max_concurrency),
        ("key_concurrency", key_concurrency),
    ):
        if value is not None and value < 1:
            raise JobKindError(f"job kind {name!r}: {label} must be >= 1")
    if (key_concurrency is not None or key_rate is not None) and concurrency_key is None:
        raise JobKindError(
            f"job kind {name!r}: key_concurrency and key_rate need a concurrency_key"
        )
    key_fn: KeyFunction | None
    if isinstance(concurrency_key, str):
        field_name = concurrency_key

        def key_fn(model: Any) -> str | int | None:
            return getattr(model, field_name)  # type: ignore[no-any-return]

        if field_name not in input.model_fields:
            raise JobKindError(
                f"job kind {name!r}: concurrency_key {field_name!r} is not a field of "
                f"{input.__name__}"
            )
    else:
        key_fn = concurrency_key
    try:
        limit = _limit(max_concurrency, rate)
        key_limit = _limit(key_concurrency if key_concurrency is not None else 1, key_rate)
    except ValueError as exc:
        raise JobKindError(f"job kind {name!r}: {exc}") from None
    names = [s.name for s in schedules]
    if len(set(names)) != len(names):
        raise JobKindError(f"job kind {name!r} declares two schedules with the same name")
    for spec in schedules:
        problems = validate_spec(spec)
        if problems:
            raise JobKindError(
                f"schedule {spec.name!r} of {name!r}: "
                + "; ".join(f"{'.'.join(p.path)}: {p.message}" for p in problems)
            )

    def register(handler: Handler) -> Handler:
        origin = f"{getattr(handler, '__module__', '?')}:{getattr(handler, '__qualname__', '?')}"
        if not _is_async(handler):
            raise JobKindError(
                f"the handler of job kind {name!r} ({origin}) must be an `async def` function"
            )
        apply_convention(input)
        result_model = _result_model(handler)
        if result_model is not None:
            apply_convention(result_model)
        doc = description if description is not None else (handler.__doc__ or "").strip()
        kind = JobKind(
            name=name,
            input_model=input,
            handler=handler,
            queue=queue,
            max_attempts=max_attempts,
            timeout_seconds=timeout,
            backoff_base_seconds=backoff_base,
            backoff_cap_seconds=backoff_cap,
            description=doc.splitlines()[0] if doc else "",
            result_model=result_model,
            origin=origin,
            limit=limit,
            key_limit=key_limit if key_fn is not None else None,
            concurrency_key=key_fn,
            schedules=tuple(schedules),
        )
        if into is None:
            _DECLARED.append(kind)
        else:
            into.add(kind)
        with contextlib.suppress(AttributeError, TypeError):  # a callable without attributes
            setattr(handler, KIND_ATTRIBUTE, kind)
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


def _is_async(handler: object) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _result_model(handler: Handler) -> type[BaseModel] | None:
    """The return annotation, when it is a pydantic model. One that cannot be resolved yet
    (a name defined after the handler) is no typed result."""
    returned = getattr(handler, "__annotations__", {}).get("return")
    if isinstance(returned, str):  # `from __future__ import annotations`: resolve it as typing does
        try:
            returned = eval(returned, getattr(handler, "__globals__", {}))
        except Exception:
            return None
    return returned if isinstance(returned, type) and issubclass(returned, BaseModel) else None


def _describe(value: object) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return f"{type(value).__name__} {value!r}"[:80]


#: Config keys that, when the model sets them, mean it chose its own names.
_NAMING_KEYS = ("alias_generator", "validate_by_name", "populate_by_name")


def apply_convention(model: type[BaseModel]) -> None:
    """Conveyor's one field convention, applied by `@job_kind` to the input model, to the
    result model (a handler's return annotation) and to the models nested in their fields:
    camelCase on the wire (`accountId`), snake_case attributes in Python (`input.account_id`;
    constructing by either name works), and unknown fields refused.

    The class itself is changed, so a model shared with other code changes there too. A model
    opts out key by key through its own `model_config`: `alias_generator=None` (or any alias
    generator, or `validate_by_name`) keeps its own names, `extra="ignore"` accepts unknown
    fields. A field with an explicit alias keeps it.
    """
    for nested in _nested_models(model, {model}):
        _apply(nested)
    _apply(model)


def _apply(model: type[BaseModel]) -> None:
    config = model.model_config
    changed = False
    if not any(key in config for key in _NAMING_KEYS):
        config["alias_generator"] = to_camel  # for subclasses declared later
        config["validate_by_name"] = True
        config["validate_by_alias"] = True
        for field_name, info in model.model_fields.items():
            if info.alias is None and info.validation_alias is None:
                alias = to_camel(field_name)
                info.alias = info.validation_alias = info.serialization_alias = alias
                info.alias_priority = 1
                if info.title is None:  # what pydantic shows for a field without an alias
                    info.title = field_name.replace("_", " ").title()
        changed = True
    if "extra" not in config:
        config["extra"] = "forbid"
        changed = True
    if changed:
        model.model_rebuild(force=True)


def _nested_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    """Models used in `model`'s field annotations (in lists, unions, dicts...), innermost first."""
    for info in model.model_fields.values():
        for found in _models_in(info.annotation):
            if found not in seen:
                seen.add(found)
                yield from _nested_models(found, seen)
                yield found


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


#: Every workflow declared in this process so far (`workflow(...)` at import time, as
#: `@job_kind` declares kinds); `conveyor.kinds.load` picks those of the modules it loads.
_DECLARED_WORKFLOWS: list[Workflow] = []


def declared_workflows() -> list[Workflow]:
    return list(_DECLARED_WORKFLOWS)


def workflow(
    name: str,
    *,
    input: type[BaseModel],
    steps: Sequence[Step | Map],
    description: str = "",
    into: Registry | None = None,
) -> Workflow:
    """Define and validate a workflow (ADR-0023). Its structure (keys, edges, no cycle,
    connected) is checked here, at import, and its kinds against those declared so far
    (declare them first; with `into`, against that registry's, and the workflow goes there
    instead of the process's declarations); a process that loads it checks again that it
    loads its kinds (`Registry.add_workflow`). A definition that cannot run raises
    `InvalidWorkflow`."""
    apply_convention(input)
    parents = validate(name, input, steps, _Declared() if into is None else into)
    module = sys._getframe(1).f_globals.get("__name__", "?")
    wf = Workflow(name, input, tuple(steps), description, parents, module)
    if into is None:
        _DECLARED_WORKFLOWS.append(wf)
    else:
        into.add_workflow(wf)
    return wf


class _Declared:
    """Every kind declared so far, by name: what a workflow's steps may run."""

    def get(self, name: str) -> JobKind | None:
        return next((k for k in reversed(_DECLARED) if k.name == name), None)
