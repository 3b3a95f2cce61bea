"""`conveyor kinds`: the job kinds a process given these job modules would run, and whether a
live worker runs each now."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from conveyor.cli.checks import fail, load_kinds, out, postgres_problem
from conveyor.settings import Settings

if TYPE_CHECKING:
    from conveyor.services.ops import Coverage


def kinds(settings: Settings, args: argparse.Namespace) -> int:
    registry = load_kinds(settings)
    if isinstance(registry, int):
        return registry
    modules = ", ".join(settings.jobs) or "none"
    if not len(registry):
        return fail(f"the job modules ({modules}) define no job kinds: set JOB_MODULES or --jobs")
    coverage, problem = asyncio.run(_coverage(settings))
    out(f"job modules: {modules}")
    rows = [("KIND", "QUEUE", "LIVE WORKERS", "DESCRIPTION")]
    for kind in registry.all():
        rows.append(
            (kind.name, kind.queue, _live(coverage, kind.name, kind.queue), kind.description)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    if problem:
        out(f"live workers unknown: {problem}")
    return 0


def _live(coverage: Coverage | None, kind: str, queue: str) -> str:
    if coverage is None:
        return "?"
    if n := coverage.workers_for(kind, queue):
        return str(n)
    return "0 (none knows the kind)" if coverage.serves_queue(queue) else "0 (queue not served)"


async def _coverage(settings: Settings) -> tuple[Coverage | None, str | None]:
    from conveyor.db.engine import create_engine
    from conveyor.services import ops

    if problem := await postgres_problem(settings):
        return None, problem
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        return await ops.read_coverage(engine, settings), None
    finally:
        await engine.dispose()
