"""The baseline users would pick instead of a Conveyor workflow: the same DAG under Celery's
canvas, `split -> chord(group(N no-op tasks), join)`, Redis as broker and result backend.

The app is configured from the environment (set by `bench.workflow_dag`): a loopback Redis
URL and a key prefix of the benchmark's own, so nothing else in that Redis is touched.
Celery's recommended settings otherwise (prefork pool, one process per core).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, chord

_URL = os.environ.get("CVBENCH_CELERY_REDIS", "redis://127.0.0.1:6379/0")
_PREFIX = os.environ.get("CVBENCH_CELERY_PREFIX", "cvbench-celery-")

app = Celery("cvbench_dag", broker=_URL, backend=_URL)
app.conf.update(
    broker_transport_options={"global_keyprefix": _PREFIX},
    result_backend_transport_options={"global_keyprefix": _PREFIX},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task
def noop(i: int) -> int:
    return i


@app.task
def join(results: list[Any]) -> int:
    return len(results)


@app.task(bind=True)
def split(self: Any, n: int) -> Any:
    """Fan out to `n` items: replaced by the chord, so the caller's result is the join's."""
    raise self.replace(chord([noop.s(i) for i in range(n)], join.s()))
