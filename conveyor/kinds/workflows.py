"""Workflow definitions: a named DAG of steps, each running a job kind (ADR-0023).

    class PipelineInput(BaseModel):
        items: int

    workflow(
        "demo.pipeline",
        input=PipelineInput,
        steps=[
            Step("split", "demo.split", input=lambda c: {"items": c.input.items}),
            Map("work", "demo.sleep", over="split", items=lambda r: r["items"],
                input=lambda c, item: {"steps": 1}),
            Step("join", "demo.join", after=["work"],
                 input=lambda c: {"count": len(c.results["work"])}),
        ],
    )

Define one with `workflow(...)` (`from conveyor import workflow`) in a job module, after the
kinds its steps run; a process loads it with its module (JOB_MODULES, `--jobs`).
A step's input is computed by a typed function of the workflow's input (validated by the
workflow's model) and its parents' results, when its last parent succeeds; without one, the
step gets `{}` (a map: the item itself). Validation happens here, at import: a cycle, an
unknown kind or step, a map over a step that is not its parent, or a step cut off from the
rest raises `InvalidWorkflow` naming the workflow and the step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from conveyor.domain.errors import InvalidWorkflow


class Kinds(Protocol):
    """What validation needs of the kinds registry: whether a kind exists."""

    def get(self, name: str) -> object | None: ...


#: `area.name`, like kinds (ADR-0011).
WORKFLOW_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
STEP_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_STEPS = 100
#: Items one map may fan out to (a larger list fails the map step with a clear error).
MAX_MAP_ITEMS = 100_000


@dataclass(frozen=True)
class StepInputs:
    """What a step's input function sees: the workflow's input (as its model) and the results
    of the step's parents by key (a map's result: its items' results in item order, None for
    an item that failed within `allow_failures`)."""

    input: Any
    results: Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    """Run one job of `kind` once every step in `after` succeeded."""

    key: str
    kind: str
    after: Sequence[str] = ()
    input: Callable[[StepInputs], Any] | None = None


@dataclass(frozen=True)
class Map:
    """Fan out: one job of `kind` per item of the list that `items` picks from the result of
    the parent `over` (default: the result itself). Its dependents (the join) start when every
    item ended with at most `allow_failures` failed; past that the map fails at once and its
    waiting items are cancelled."""

    key: str
    kind: str
    over: str
    after: Sequence[str] = ()
    items: Callable[[Any], Sequence[Any]] | None = None
    input: Callable[[StepInputs, Any], Any] | None = None
    allow_failures: int = 0


@dataclass(frozen=True)
class Workflow:
    name: str
    input_model: type[BaseModel]
    steps: tuple[Step | Map, ...]
    description: str
    #: Parents of each step, in definition order.
    parents: dict[str, tuple[str, ...]] = field(repr=False)
    #: The module that defined it: a process loads it with that module (ADR-0019).
    module: str = ""

    def step(self, key: str) -> Step | Map:
        return next(s for s in self.steps if s.key == key)

    def children(self, key: str) -> list[str]:
        return [s.key for s in self.steps if key in self.parents[s.key]]

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema(by_alias=True)


def parents_of(step: Step | Map) -> tuple[str, ...]:
    found = list(step.after)
    if isinstance(step, Map) and step.over not in found:
        found.insert(0, step.over)
    return tuple(dict.fromkeys(found))


def validate(
    name: str, input_model: type[BaseModel], steps: Sequence[Step | Map], kinds: Kinds
) -> dict[str, tuple[str, ...]]:
    """The parents of every step, or `InvalidWorkflow` saying what is wrong."""

    def fail(message: str) -> InvalidWorkflow:
        return InvalidWorkflow(f"workflow {name!r}: {message}")

    if not WORKFLOW_NAME.match(name):
        raise fail("the name must be dotted lowercase words, e.g. 'reports.monthly'")
    if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
        raise fail("input must be a pydantic model class")
    if not steps:
        raise fail("it has no steps")
    if len(steps) > MAX_STEPS:
        raise fail(f"it has {len(steps)} steps; at most {MAX_STEPS}")
    keys: list[str] = []
    for s in steps:
        if not isinstance(s, Step | Map):
            raise fail(f"{s!r} is not a Step or a Map")
        if not STEP_KEY.match(s.key):
            raise fail(f"step key {s.key!r} must match {STEP_KEY.pattern}")
        if s.key in keys:
            raise fail(f"step {s.key!r} is defined twice")
        keys.append(s.key)
        if kinds.get(s.kind) is None:
            raise fail(f"step {s.key!r} runs unknown job kind {s.kind!r}")
        if isinstance(s, Map) and s.allow_failures < 0:
            raise fail(f"map {s.key!r}: allow_failures must be >= 0")
    parents = {s.key: parents_of(s) for s in steps}
    for key, ps in parents.items():
        for p in ps:
            if p == key:
                raise fail(f"step {key!r} depends on itself")
            if p not in parents:
                raise fail(f"step {key!r} depends on unknown step {p!r}")
    _check_acyclic(parents, fail)
    _check_connected(keys, parents, fail)
    return parents


def _check_acyclic(
    parents: dict[str, tuple[str, ...]], fail: Callable[[str], InvalidWorkflow]
) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            raise fail(f"steps form a cycle: {' -> '.join(reversed(cycle))}")
        state[key] = 1
        for p in parents[key]:
            visit(p, [*path, key])
        state[key] = 2

    for key in parents:
        visit(key, [])


def _check_connected(
    keys: list[str], parents: dict[str, tuple[str, ...]], fail: Callable[[str], InvalidWorkflow]
) -> None:
    """Every step must be reachable from the first one along edges in either direction: a
    step cut off from the rest is almost always a forgotten `after`."""
    neighbours: dict[str, set[str]] = {k: set(parents[k]) for k in keys}
    for k, ps in parents.items():
        for p in ps:
            neighbours[p].add(k)
    seen = {keys[0]}
    todo = [keys[0]]
    while todo:
        for n in neighbours[todo.pop()]:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    cut = [k for k in keys if k not in seen]
    if cut:
        raise fail(
            f"step(s) {', '.join(map(repr, cut))} are unreachable: not connected to "
            f"{keys[0]!r} by any `after`/`over`"
        )


class WorkflowRegistry:
    def __init__(self) -> None:
        self._workflows: dict[str, Workflow] = {}

    def add(self, wf: Workflow) -> None:
        if wf.name in self._workflows:
            raise InvalidWorkflow(f"workflow {wf.name!r} is registered twice")
        self._workflows[wf.name] = wf

    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def all(self) -> list[Workflow]:
        return sorted(self._workflows.values(), key=lambda w: w.name)
