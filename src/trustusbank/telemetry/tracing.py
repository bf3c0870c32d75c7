"""OpenTelemetry tracing for our components, exported as JSON lines under the state directory.

A file per component keeps the embedded mode free of a collector while staying
queryable; the spans are standard OTel spans, so an OTLP exporter can replace
the file exporter on a cluster without touching the instrumentation.

Spans wait in memory only until the next export: at most MAX_QUEUED of them. When the
exporter falls that far behind, the SDK drops the oldest waiting span; each drop is counted in
the component's `trustusbank_spans_dropped_total`, so a trace with a hole says why.
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
from prometheus_client import CollectorRegistry, Counter

from trustusbank.telemetry.jsonlog import append_lines

_PROPAGATOR = TraceContextTextMapPropagator()
MAX_QUEUED = 2048  # spans waiting for export (the SDK's default, said here so it is ours)
EXPORT_DELAY_MS = 200


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


class CountedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans it drops when its queue is full (it only logs them)."""

    def __init__(
        self,
        exporter: SpanExporter,
        registry: CollectorRegistry,
        max_queued: int = MAX_QUEUED,
        delay_ms: float = EXPORT_DELAY_MS,
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queued,
            schedule_delay_millis=delay_ms,
            max_export_batch_size=min(512, max_queued),
        )
        self.max_queued = max_queued
        self._dropped = Counter(
            "trustusbank_spans_dropped",
            f"Spans dropped before export: more than {max_queued} were waiting (the oldest goes).",
            registry=registry,
        )

    def on_end(self, span: ReadableSpan) -> None:
        # The SDK keeps its queue private; a full one drops a span as this one goes in.
        queue = self._batch_processor._queue
        if span.context is not None and span.context.trace_flags.sampled and len(queue) >= self.max_queued:
            self._dropped.inc()
        super().on_end(span)


def setup_tracing(
    service_name: str,
    path: Path,
    attributes: Mapping[str, str] | None = None,
    registry: CollectorRegistry | None = None,
) -> TracerProvider:
    """A provider exporting to `path`; its span drops counted in `registry` (the component's /metrics)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, **(attributes or {})}))
    counted = registry if registry is not None else CollectorRegistry()
    provider.add_span_processor(CountedBatchSpanProcessor(JsonLinesSpanExporter(path), counted))
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
