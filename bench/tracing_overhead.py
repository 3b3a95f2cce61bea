"""What the tracing hooks cost a job when tracing is off (ADR-0024), and on.

Runs every hook one job passes through (API: request, operation, submit with its carrier,
dispatch; worker: claim, attempt, outcome) in a loop, with tracing off, then on with the SDK
and an in-memory exporter. Prints one JSON line; measures, never asserts.

Run: `.venv/bin/python -m bench.tracing_overhead`.
"""

from __future__ import annotations

import json
import timeit

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conveyor import tracing
from conveyor.domain.outcomes import succeeded
from conveyor.worker import runner

HEADERS = [(b"host", b"x"), (b"content-type", b"application/json"), (b"authorization", b"x")]
OUTCOME = succeeded(None)


def one_job() -> None:
    with tracing.server_span(HEADERS, "POST /graphql") as request:
        with tracing.span("GraphQL SubmitJob", {"graphql.operation.name": "SubmitJob"}) as op:
            with tracing.span("conveyor.submit", {"conveyor.jobs": 1}):
                tracing.carrier()
            with tracing.span("conveyor.dispatch", {"conveyor.jobs": 1}, child_only=True):
                pass
            op.set_attribute("http.response.status_code", 200)
        request.set_attribute("http.response.status_code", 200)
    started = tracing.now()
    with tracing.span("conveyor.claim", {"conveyor.attempt": 1}, kind="consumer", start_ns=started):
        pass
    with tracing.span("conveyor.attempt", {"conveyor.attempt": 1}):
        runner._trace_outcome(OUTCOME)


def per_job_us(number: int) -> float:
    return min(timeit.repeat(one_job, number=number, repeat=3)) / number * 1e6


def main() -> None:
    off = per_job_us(100_000)
    tracing.use(InMemorySpanExporter())
    on = per_job_us(5_000)
    tracing.shutdown()
    print(json.dumps({"hooks_off_us_per_job": round(off, 2), "hooks_on_us_per_job": round(on, 1)}))


if __name__ == "__main__":
    main()
