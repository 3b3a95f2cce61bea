"""Work jobs in the calling process, one at a time, for tests of job kinds and of the engine.

Like River's `rivertest.Worker` and procrastinate's in-memory testing: no worker process, no
broker, no Redis stream; the job still goes through the worker's real runner (the guarded
claim, the handler under its deadline, progress written in batches, the outcome decided by
`domain.outcomes` and recorded by the same statement), against the real PostgreSQL of `deps`.

    async with open_deps(settings, registry) as deps:
        harness = Harness(deps)
        job = await harness.run(job_id)          # claimed, run, recorded
        assert job.status is JobStatus.SUCCEEDED
"""

from __future__ import annotations

import uuid
from concurrent.futures import Executor, ThreadPoolExecutor

from conveyor.db import jobs as jobs_repo
from conveyor.db.engine import statements
from conveyor.domain.models import Job
from conveyor.services.deps import Deps
from conveyor.worker.progress import ProgressWriter
from conveyor.worker.runner import JobRunner


class Harness:
    def __init__(
        self, deps: Deps, *, worker_id: str = "test-harness", pool: Executor | None = None
    ) -> None:
        self.deps = deps
        #: `ctx.run_in_process` runs on threads here unless a process pool is given.
        self.pool = pool or ThreadPoolExecutor(2)
        self.writer = ProgressWriter(deps, interval=0.0)
        self.runner = JobRunner(deps, worker_id, self.writer, self.pool)

    async def run(self, job_id: uuid.UUID) -> Job:
        """Claim and run this job now, as a worker would on receiving its message, and return
        it as stored afterwards. A job that is not QUEUED is left as it is (the claim is
        guarded), and returned unchanged."""
        await self.runner.run(job_id, None)
        await self.writer.flush()
        async with statements(self.deps.engine) as conn:
            job = await jobs_repo.get(conn, job_id=job_id, owner_id=None)
        if job is None:
            raise LookupError(f"no job {job_id}")
        return job

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
