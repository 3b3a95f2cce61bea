"""OpenTelemetry traces (ADR-0024): one trace from the HTTP request through the submit
transaction and the dispatch, to the worker's claim and each attempt of the job.

Off unless the standard variables ask for it: `OTEL_TRACES_EXPORTER=otlp` (or `console`), or
an `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SDK_DISABLED=true`
wins. The SDK reads its other standard variables itself (endpoint, headers, protocol
`http/protobuf`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`).

The submit span's context is stored on the job (`jobs.trace_context`, W3C `traceparent` and
`tracestate`), so a claim and an attempt, on any worker, days later for a retry, join the
trace the job was submitted in.

The hooks stay thin at their call sites and cost nothing measurable when off: `span()`
returns one shared no-op context manager, `carrier()` None, `now()` 0; nothing of
OpenTelemetry is imported. The tracer is process state, like OpenTelemetry's own global
provider: `configure` sets it once per process (tests use `use` with an in-memory exporter).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, Protocol

from conveyor.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["internal", "server", "consumer", "producer"]
Attributes = Mapping[str, str | int | float | bool]


class Span(Protocol):
    def set_attribute(self, key: str, value: str | int | float | bool) -> Any: ...

    def is_recording(self) -> bool: ...


class _NoSpan:
    """What a hook yields when tracing is off."""

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        return None

    def is_recording(self) -> bool:
        return False


class Scope(Protocol):
    """A span's block: `with` or `async with`, yielding the span."""

    def __enter__(self) -> Span: ...

    def __exit__(self, *exc: object) -> bool | None: ...

    async def __aenter__(self) -> Span: ...

    async def __aexit__(self, *exc: object) -> bool | None: ...


_NO_SPAN = _NoSpan()
_OFF: contextlib.nullcontext[Span] = contextlib.nullcontext(_NO_SPAN)


class _Scope:
    """OpenTelemetry's span context manager, usable in `async with` too."""

    __slots__ = ("_cm",)

    def __init__(self, cm: contextlib.AbstractContextManager[Span]) -> None:
        self._cm = cm

    def __enter__(self) -> Span:
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        return self._cm.__exit__(*exc)

    async def __aenter__(self) -> Span:
        return self._cm.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self._cm.__exit__(*exc)


class _Tracing:
    """The on state: a tracer provider and the few OpenTelemetry pieces the hooks use."""

    def __init__(self, provider: Any, *, set_global: bool) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("conveyor")
        self.trace = trace
        self.context = context
        self.propagator = TraceContextTextMapPropagator()
        self.kinds = {
            "internal": trace.SpanKind.INTERNAL,
            "server": trace.SpanKind.SERVER,
            "consumer": trace.SpanKind.CONSUMER,
            "producer": trace.SpanKind.PRODUCER,
        }
        if set_global:  # so that spans a job handler makes join the attempt's
            trace.set_tracer_provider(provider)

    def span(
        self,
        name: str,
        attributes: Attributes | None,
        parent: Mapping[str, str] | None,
        kind: Kind,
        start_ns: int | None,
    ) -> Scope:
        ctx = self.propagator.extract(parent) if parent else None
        return _Scope(
            self.tracer.start_as_current_span(
                name,
                context=ctx,
                kind=self.kinds[kind],
                attributes=attributes,
                start_time=start_ns or None,
                record_exception=True,
                set_status_on_exception=True,
            )
        )

    def carrier(self) -> dict[str, str] | None:
        found: MutableMapping[str, str] = {}
        self.propagator.inject(found)
        return dict(found) or None


_state: _Tracing | None = None


def wanted(settings: Settings) -> str | None:
    """The exporter the settings ask for ("otlp", "console"), or None: tracing off."""
    if settings.otel_sdk_disabled:
        return None
    exporter = settings.otel_traces_exporter.strip().lower()
    if exporter in ("", "none"):
        endpoint = (
            settings.otel_exporter_otlp_endpoint or settings.otel_exporter_otlp_traces_endpoint
        )
        return "otlp" if exporter == "" and endpoint else None
    return exporter


def configure(settings: Settings, service: str) -> bool:
    """Turn tracing on for this process when the settings ask for it (once; later calls, and
    calls while a test's `use` is in force, change nothing). True when tracing is on."""
    global _state
    if _state is not None:
        return True
    exporter = wanted(settings)
    if exporter is None:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:  # otlp: http/protobuf, configured by OTEL_EXPORTER_OTLP_*
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Given here too, so that a .env file (which the SDK does not read) works.
        endpoint = settings.otel_exporter_otlp_traces_endpoint or (
            settings.otel_exporter_otlp_endpoint
            and settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        )
        span_exporter = OTLPSpanExporter(endpoint=endpoint or None)
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
    resource = Resource.create({SERVICE_NAME: service}).merge(Resource.create())
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    _state = _Tracing(provider, set_global=True)
    log.info("OpenTelemetry tracing on", extra={"exporter": exporter, "service": service})
    return True


def use(exporter: Any) -> None:
    """Trace into `exporter`, span by span (tests: the SDK's InMemorySpanExporter)."""
    global _state
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _state = _Tracing(provider, set_global=False)


def shutdown() -> None:
    """Flush what is buffered and turn tracing off (process exit, end of a test)."""
    global _state
    state, _state = _state, None
    if state is not None:
        state.provider.shutdown()


def enabled() -> bool:
    return _state is not None


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    parent: Mapping[str, str] | None = None,
    kind: Kind = "internal",
    start_ns: int = 0,
    child_only: bool = False,
) -> Scope:
    """A span around a block, child of the current span or of `parent` (a stored
    `carrier()`). Exceptions are recorded and mark it an error. `child_only`: none outside
    a trace (background work would start a trace of its own per call)."""
    if _state is None:
        return _OFF
    if child_only and parent is None and not _state.trace.get_current_span().is_recording():
        return _OFF
    return _state.span(name, attributes, parent, kind, start_ns)


def server_span(headers: list[tuple[bytes, bytes]], name: str) -> Scope:
    """The span of an incoming request, continuing the caller's trace (`traceparent`)."""
    if _state is None:
        return _OFF
    carrier = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in headers
        if k in (b"traceparent", b"tracestate")
    }
    return _state.span(name, None, carrier or None, "server", None)


def current() -> Span:
    """The span of the running block (a no-op one when off)."""
    if _state is None:
        return _NO_SPAN
    span: Span = _state.trace.get_current_span()
    return span


def carrier() -> dict[str, str] | None:
    """The current span's W3C context, to store with a job (None when off or outside a span)."""
    return None if _state is None else _state.carrier()


def now() -> int:
    """A start time for a span opened later (`span(start_ns=...)`); 0 when off."""
    return 0 if _state is None else time.time_ns()


def failed(span: Span, description: str) -> None:
    """Mark `span` an error without an exception (an attempt that failed)."""
    if _state is not None and span.is_recording():
        trace = _state.trace
        span.set_status(trace.Status(trace.StatusCode.ERROR, description))  # type: ignore[attr-defined]
