"""Loading the job modules a process was told to run (`JOB_MODULES`, `--jobs`), as
`celery -A proj` or `taskiq worker proj.broker:broker` do.

A module brings the kinds and workflows declared in it and in its submodules (a package
whose `__init__` imports its submodules brings them all), and the kind handlers it imports by
name. Anything
wrong is a `JobKindError` with a one-line message: the CLI prints it and exits 2.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from conveyor.domain.errors import JobKindError
from conveyor.kinds.registry import JobKind, Registry, declared, declared_workflows, kind_of
from conveyor.kinds.workflows import Workflow

#: The kinds Conveyor ships, loaded by default with ENV=dev (`make run`, the tests).
DEMO_MODULES = ("conveyor.kinds.demo", "conveyor.kinds.compute")
#: A dotted module path.
MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def parse(value: str) -> list[str]:
    """`a.b, c` -> ["a.b", "c"]; JobKindError for anything that is not a module path."""
    modules = [m.strip() for m in value.split(",") if m.strip()]
    for module in modules:
        if not MODULE_PATH.match(module):
            raise JobKindError(
                f"{module!r} is not a module path (dotted names, e.g. acme.jobs, comma separated)"
            )
    return list(dict.fromkeys(modules))


def load(modules: Sequence[str]) -> Registry:
    """Import `modules` and return the registry of the kinds and workflows they bring."""
    _working_directory_importable()
    imported = [_import(m) for m in modules]
    chosen: list[JobKind] = []
    for kind in declared():
        if any(kind.module == m or kind.module.startswith(m + ".") for m in modules):
            chosen.append(kind)
    for module in imported:
        for value in list(vars(module).values()):
            found = kind_of(value)
            if found is not None:
                chosen.append(found)
    flows: list[Workflow] = [
        wf
        for wf in declared_workflows()
        if any(wf.module == m or wf.module.startswith(m + ".") for m in modules)
    ]
    # JobKindError when two declarations share a name, InvalidWorkflow when a workflow's
    # kinds are not among the loaded ones.
    return Registry(chosen, flows)


def _working_directory_importable() -> None:
    """The user's package may sit in the working directory, as for uvicorn and celery. It
    goes after site-packages: a directory named like an installed package does not shadow it.
    (`python -m conveyor` already has it first.)"""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except JobKindError as exc:  # a kind declared wrongly, raised by @job_kind
        raise JobKindError(f"job module {module!r}{_where(exc)}: {exc}") from None
    except Exception as exc:
        raise JobKindError(_import_failure(module, exc)) from None


def _import_failure(module: str, exc: Exception) -> str:
    reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module == missing or module.startswith(missing + ".")):
        return (
            f"cannot import job module {module!r} ({reason}): is its package installed, or in "
            "the working directory or on PYTHONPATH?"
        )
    return f"cannot import job module {module!r}{_where(exc)}: {reason}"


def _where(exc: Exception) -> str:
    """` at FILE:LINE` of the user's line that raised (Conveyor's own frames skipped)."""
    here = os.path.dirname(__file__)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(here) and not f.filename.startswith("<frozen")
    ]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
