"""A backend that hangs up is a failure, not a refusal: in the log, the metrics, the evidence and the report.

The waypoint runs as its process wires it (`harness.running`); its backend is a real
TCP server that reads the request and closes the connection without a word, so the
waypoint answers 502. Nothing refused that request: no policy, no rule. The evidence
store ingests the waypoint's own log file, and the DORA report is built from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore

from tests.mesh.waypoint.harness import ALICE, DEADLINE, GATEWAY, ToBackend, running
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, build_report, ingest
from trustusbank.evidence.render import markdown

DENIALS = "agentgateway_policy_denials_total"
ERRORS = "trustusbank_waypoint_errors_total"
HUNG_UP = "Server disconnected without sending a response"


@asynccontextmanager
async def hanging_up() -> AsyncIterator[int]:
    """A backend that reads the request's head and closes the connection without answering."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_backend_that_hangs_up_is_logged_counted_ingested_and_reported_as_an_error(
    tmp_path: Path,
) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.logs.mkdir(parents=True)
    log_path = files.logs / "waypoint-shop-wp.jsonl"
    async with running(tmp_path / "wp", log_path) as waypoint, hanging_up() as port:
        upstream = httpcore.AsyncConnectionPool(network_backend=ToBackend(port))
        waypoint.app.pool = upstream
        alice, _ = waypoint.client(ALICE)
        try:
            async with asyncio.timeout(DEADLINE):
                response = await alice.request("GET", "http://wp.shop:8080/echo/hung-up")
        finally:
            await upstream.aclose()

        assert response.status == 502
        [line] = [line for line in waypoint.lines() if line.get("http.path") == "/echo/hung-up"]
        assert line["decision"] == "error"
        assert line["rule"] is None
        assert line["http.status"] == 502
        assert line["reason"].startswith("upstream error: ")
        assert HUNG_UP in line["reason"]
        assert line["message"] == "request error"

        # Counted as a failure of the backend, never as a policy denial.
        assert waypoint.metrics.registry.get_sample_value(DENIALS) is None
        assert not [s for m in waypoint.metrics.denied.collect() for s in m.samples if s.value]
        labels = {
            "gateway": GATEWAY,
            "route": line["route"],
            "backend": line["backend"],
            "where": "upstream",
            "error_type": "RemoteProtocolError",
        }
        assert waypoint.metric(ERRORS, **labels) == 1

    store = EvidenceStore.of(files)
    assert ingest(files, store) == 1
    [record] = store.select()
    assert record.kind == "http-error"
    assert not record.is_deny
    assert record.policy is None
    assert HUNG_UP in record.summary

    report = build_report(files, store, register=[])
    assert report.blocked == []
    assert [(g.kind, g.src_identity, g.count) for g in report.failed] == [("http-error", str(ALICE), 1)]
    text = markdown(report)
    blocked = text.split("### What was blocked", 1)[1].split("\n### ", 1)[0]
    assert "_None on record._" in blocked
    assert "http-error" not in blocked
    assert "http-error" in text.split("### What failed", 1)[1].split("\n### ", 1)[0]
