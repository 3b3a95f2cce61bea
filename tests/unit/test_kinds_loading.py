"""`conveyor.kinds.load`: the kinds of the job modules a process is given, and the one-line
error for each way user code can be wrong. The modules are written to a temporary directory
under names of their own (imports are cached per process)."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import kinds
from conveyor.domain.errors import JobKindError
from conveyor.kinds import registry
from conveyor.settings import Settings

Write = Callable[[str, str], str]

KIND = """
from pydantic import BaseModel
from conveyor import JobContext, job_kind

class In(BaseModel):
    account_id: int

@job_kind("{name}", input=In, queue="{queue}")
async def handler(ctx: JobContext, input: In) -> None:
    return None
"""


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Write]:
    """write(relative path under a fresh top-level package, source) -> that package's name."""
    top = f"userjobs_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / top).mkdir()
    (tmp_path / top / "__init__.py").write_text("")

    def write_module(relative: str, source: str) -> str:
        path = tmp_path / top / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return top

    yield write_module
    # The kinds and workflows these throwaway packages declared (some on purpose twice) leave
    # the process's declarations: a `Producer` without a registry, in a later test of this
    # process, takes every declared kind and would refuse the duplicate.
    registry._DECLARED[:] = [k for k in registry._DECLARED if not _within(k.module, top)]
    registry._DECLARED_WORKFLOWS[:] = [
        w for w in registry._DECLARED_WORKFLOWS if not _within(w.module, top)
    ]
    for name in [m for m in sys.modules if _within(m, top)]:
        del sys.modules[name]


def _within(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def test_a_package_brings_its_submodules_kinds_and_only_the_modules_asked_for(write: Write) -> None:
    top = write("reports.py", KIND.format(name="reports.generate", queue="reports"))
    write("billing/__init__.py", "from . import invoices\n")
    write("billing/invoices.py", KIND.format(name="invoices.send", queue="default"))
    write("__init__.py", "from . import reports\n")
    assert kinds.load([top]).names() == ["reports.generate"]  # billing is not imported by top
    assert kinds.load([f"{top}.billing"]).names() == ["invoices.send"]
    both = kinds.load([top, f"{top}.billing"])
    assert [(k.name, k.queue) for k in both.all()] == [
        ("invoices.send", "default"),
        ("reports.generate", "reports"),
    ]
    # An API and a worker (two processes, or here two loads) may run different sets.
    assert kinds.load([f"{top}.billing"]).get("reports.generate") is None


def test_a_kind_imported_by_name_counts_for_the_importing_module(write: Write) -> None:
    top = write("impl.py", KIND.format(name="reports.monthly", queue="default"))
    write("worker_set.py", f"from {top}.impl import handler as monthly\n")
    assert kinds.load([f"{top}.worker_set"]).names() == ["reports.monthly"]


def _error(modules: list[str]) -> str:
    with pytest.raises(JobKindError) as caught:
        kinds.load(modules)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_module_that_does_not_exist_says_where_it_was_looked_for(write: Write) -> None:
    top = write("present.py", "")
    assert _error([f"{top}.absent"]) == (
        f"cannot import job module '{top}.absent' (ModuleNotFoundError: No module named "
        f"'{top}.absent'): is its package installed, or in the working directory or on "
        "PYTHONPATH?"
    )


def test_a_module_that_fails_on_import_names_its_line(write: Write, tmp_path: Path) -> None:
    top = write("broken.py", "import os\n\nvalue = undefined_name + 1\n")
    assert _error([f"{top}.broken"]) == (
        f"cannot import job module '{top}.broken' at {tmp_path / top / 'broken.py'}:3: "
        "NameError: name 'undefined_name' is not defined"
    )
    missing_dependency = write("needs.py", "import not_installed_anywhere_x\n")
    assert _error([f"{missing_dependency}.needs"]).endswith(
        "ModuleNotFoundError: No module named 'not_installed_anywhere_x'"
    )


def test_a_kind_declared_in_two_modules_is_refused(write: Write) -> None:
    top = write("one.py", KIND.format(name="dup.kind", queue="default"))
    write("two.py", KIND.format(name="dup.kind", queue="other"))
    assert _error([f"{top}.one", f"{top}.two"]) == (
        f"job kind 'dup.kind' is registered twice: by {top}.one:handler and by {top}.two:handler"
    )
    assert kinds.load([f"{top}.one"]).names() == ["dup.kind"]  # each alone is fine


def test_an_input_that_is_not_a_pydantic_model_is_refused(write: Write, tmp_path: Path) -> None:
    top = write(
        "plain.py",
        """
        from dataclasses import dataclass
        from conveyor import job_kind

        @dataclass
        class In:
            x: int

        @job_kind("plain.kind", input=In)
        async def handler(ctx, input): ...
        """,
    )
    assert _error([f"{top}.plain"]) == (
        f"job module '{top}.plain' at {tmp_path / top / 'plain.py'}:9: the input of job kind "
        f"'plain.kind' must be a pydantic BaseModel subclass, not {top}.plain.In"
    )


def test_a_handler_that_is_not_async_is_refused(write: Write) -> None:
    top = write(
        "blocking.py",
        """
        from pydantic import BaseModel
        from conveyor import job_kind

        class In(BaseModel):
            x: int

        @job_kind("blocking.kind", input=In)
        def handler(ctx, input): ...
        """,
    )
    assert _error([f"{top}.blocking"]).endswith(
        f"the handler of job kind 'blocking.kind' ({top}.blocking:handler) must be an "
        "`async def` function"
    )


def test_job_modules_default_to_the_demo_kinds_in_dev_only() -> None:
    secret = "s3cr3t-" * 6
    assert Settings(_env_file=None, env="dev").jobs == list(kinds.DEMO_MODULES)  # type: ignore[call-arg]
    production = Settings(_env_file=None, env="production", secret_key=secret)  # type: ignore[call-arg]
    assert production.jobs == []
    given = Settings(_env_file=None, env="production", secret_key=secret, job_modules="a.b, c")  # type: ignore[call-arg]
    assert given.jobs == ["a.b", "c"]
    assert Settings(_env_file=None, job_modules="").jobs == []  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="'a-b' is not a module path"):
        Settings(_env_file=None, job_modules="a-b")  # type: ignore[call-arg]
