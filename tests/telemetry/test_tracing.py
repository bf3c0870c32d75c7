"""Spans wait in a bounded queue for export; the ones it drops are counted on the component's /metrics."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.serving import served
from trustusbank.telemetry.admin import control_app
from trustusbank.telemetry.tracing import CountedBatchSpanProcessor, read_spans, setup_tracing


class StuckExporter(SpanExporter):
    """An exporter that holds its first batch until released: the queue behind it can only fill."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait()
        self.exported += [s.name for s in spans]
        return SpanExportResult.SUCCESS


def dropped_on_metrics(url: str) -> float:
    text = httpx.get(f"{url}/metrics", trust_env=False).raise_for_status().text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return next(s.value for s in samples if s.name == "trustusbank_spans_dropped_total")


def test_spans_past_the_queue_bound_are_dropped_oldest_first_and_counted() -> None:
    registry = CollectorRegistry()
    exporter = StuckExporter()
    provider = TracerProvider()
    provider.add_span_processor(CountedBatchSpanProcessor(exporter, registry, max_queued=2, delay_ms=10))
    tracer = provider.get_tracer("test")
    with served(lambda _: control_app(registry, lambda: True)) as admin:
        assert dropped_on_metrics(admin.url) == 0
        tracer.start_span("first").end()
        assert exporter.entered.wait(30)  # the worker holds "first": nothing drains the queue now
        for name in ("a", "b", "c", "d", "e"):
            tracer.start_span(name).end()
        assert dropped_on_metrics(admin.url) == 3
        exporter.release.set()
        provider.force_flush()
        assert exporter.exported == ["first", "d", "e"]  # the queue kept the newest two
        provider.shutdown()


def test_the_components_tracing_exports_every_span_while_the_queue_has_room(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    provider = setup_tracing("component", tmp_path / "spans.jsonl", registry=registry)
    for n in range(10):
        provider.get_tracer("test").start_span(f"s{n}").end()
    provider.force_flush()
    assert [s["name"] for s in read_spans(tmp_path / "spans.jsonl")] == [f"s{n}" for n in range(10)]
    assert registry.get_sample_value("trustusbank_spans_dropped_total") == 0
    provider.shutdown()
