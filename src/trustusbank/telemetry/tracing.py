"""OpenTelemetry tracing for our components, exported as JSON lines under the state directory.

A file per component keeps the embedded mode free of a collector while staying
queryable; the spans are standard OTel spans, so an OTLP exporter can replace
the file exporter on a cluster without touching the instrumentation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from trustusbank.telemetry.jsonlog import append_lines

_PROPAGATOR = TraceContextTextMapPropagator()


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [span.to_json(indent=None) for span in spans]
        with self._lock:
            append_lines(self.path, lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def setup_tracing(
    service_name: str, path: Path, attributes: Mapping[str, str] | None = None
) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, **(attributes or {})}))
    provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(path), schedule_delay_millis=200))
    return provider


def inject(context: Context | None = None) -> dict[str, str]:
    """The W3C `traceparent` (and `tracestate`) headers for the current or given context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def extract(headers: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(carrier=dict(headers))


def read_spans(path: Path) -> list[dict[str, object]]:
    """Spans a component has exported so far (for tests and the evidence trail)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


__all__ = ["extract", "inject", "read_spans", "setup_tracing", "trace"]
