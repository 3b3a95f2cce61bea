"""OpenTelemetry traces through a real API and worker (in this process), exported to the SDK's
in-memory exporter: one trace from the client's request to every attempt, retries included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from conveyor import tracing
from conveyor.settings import Settings
from tests import support
from tests.support import SUBMIT, GraphQLClient

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.use(exporter)
    yield exporter
    tracing.shutdown()


def _named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


async def _wait_spans(spans: InMemorySpanExporter, name: str, n: int) -> list[ReadableSpan]:
    deadline = time.monotonic() + 30
    while len(found := _named(spans, name)) < n:
        assert time.monotonic() < deadline, [s.name for s in spans.get_finished_spans()]
        await asyncio.sleep(0.05)
    return found


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


async def test_one_trace_from_the_request_to_every_attempt_and_a_later_retry(
    stack: support.Stack, env: support.Env, spans: InMemorySpanExporter
) -> None:
    _, base = stack.serve()
    worker = stack.worker()
    key = env.create_key("alice")
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        answer = await http.post(
            "/graphql",
            json={
                "query": SUBMIT.replace("mutation(", "mutation SubmitFlaky("),
                "operationName": "SubmitFlaky",
                "variables": {
                    "input": {
                        "kind": "demo.flaky",
                        "payload": {"failTimes": 2},
                        "maxAttempts": 2,
                        "backoffBaseSeconds": 0,
                        "backoffCapSeconds": 0,
                    }
                },
            },
            headers={
                "authorization": f"Bearer {key}",
                "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01",
            },
        )
    job_id = answer.json()["data"]["submitJob"]["id"]
    client = GraphQLClient(base, key)
    await support.wait_for_status(client, job_id, {"FAILED"})
    attempts = await _wait_spans(spans, "conveyor.attempt", 2)

    [request] = [r for r in _named(spans, "POST /graphql") if r.parent is not None]
    [operation] = _named(spans, "GraphQL SubmitFlaky")
    [submit] = _named(spans, "conveyor.submit")
    dispatches = _named(spans, "conveyor.dispatch")
    claims = _named(spans, "conveyor.claim")
    # The client's trace continues: the request's parent is the client's span.
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None
    assert _hex(request.parent.span_id, 16) == CLIENT_SPAN
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 200
    for span in (request, operation, submit, *dispatches, *claims, *attempts):
        assert span.context is not None
        assert _hex(span.context.trace_id, 32) == TRACE_ID, span.name
    assert operation.parent is not None
    assert request.context is not None
    assert operation.parent.span_id == request.context.span_id
    assert submit.parent is not None
    assert operation.context is not None
    assert submit.parent.span_id == operation.context.span_id
    # Claims and attempts hang under the submit, whose context the job carries.
    assert submit.context is not None
    assert len(claims) == 2
    for span in (*claims, *attempts):
        assert span.parent is not None
        assert span.parent.span_id == submit.context.span_id
    assert any(d.parent and d.parent.span_id == operation.context.span_id for d in dispatches)
    assert sorted(_attr(a, "conveyor.attempt") for a in attempts) == [1, 2]
    assert all(a.status.status_code is StatusCode.ERROR for a in attempts)
    assert {_attr(a, "conveyor.outcome") for a in attempts} == {"FAILED"}
    [row] = await env.sql("SELECT trace_context FROM jobs WHERE id = $1::uuid", job_id)
    assert TRACE_ID in row["trace_context"]

    # Later, on another worker, in a request of another trace: a retry joins the job's trace.
    worker.terminate()
    stack.worker("worker-2")
    retried = await client(
        "mutation($id: ID!) { retryJob(id: $id) { __typename } }", {"id": job_id}
    )
    assert retried["retryJob"]["__typename"] == "Job"
    later = await _wait_spans(spans, "conveyor.attempt", 3)
    third = next(a for a in later if _attr(a, "conveyor.attempt") == 3)
    assert third.context is not None
    assert third.parent is not None
    assert _hex(third.context.trace_id, 32) == TRACE_ID
    assert third.parent.span_id == submit.context.span_id
    await client.aclose()


def _attr(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes[name]


def test_tracing_is_off_unless_the_standard_variables_ask() -> None:
    def wanted(**env: str) -> str | None:
        return tracing.wanted(Settings.model_validate({k.lower(): v for k, v in env.items()}))

    assert wanted() is None
    assert wanted(OTEL_TRACES_EXPORTER="none") is None
    assert wanted(OTEL_TRACES_EXPORTER="otlp") == "otlp"
    assert wanted(OTEL_TRACES_EXPORTER="console") == "console"
    assert wanted(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318") == "otlp"
    assert wanted(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://c:4318/v1/traces") == "otlp"
    assert wanted(OTEL_TRACES_EXPORTER="none", OTEL_EXPORTER_OTLP_ENDPOINT="http://c") is None
    assert wanted(OTEL_TRACES_EXPORTER="otlp", OTEL_SDK_DISABLED="true") is None


async def test_when_off_nothing_is_stored_or_traced(stack: support.Stack, env: support.Env) -> None:
    assert not tracing.enabled()
    _, base = stack.serve()
    stack.worker()
    client = GraphQLClient(base, env.create_key("alice"))
    job = await support.submit(client, "demo.noop", {})
    await support.wait_for_status(client, job["id"], {"SUCCEEDED"})
    [row] = await env.sql("SELECT trace_context FROM jobs WHERE id = $1::uuid", job["id"])
    assert row["trace_context"] is None
    assert tracing.carrier() is None
    with tracing.span("x") as span:
        assert not span.is_recording()
    await client.aclose()
