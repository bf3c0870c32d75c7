"""The text log lines of ztunnel and agentgateway read back as the fields their JSON would carry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustusbank.k8s.kubectl import prefixed_lines
from trustusbank.k8s.logtext import parse
from trustusbank.mesh.ztunnel.access_log import AccessLog, ConnectionRecord

REJECTED = "connection closed due to policy rejection: explicitly denied by:"
CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"


def test_the_embedded_ztunnels_own_text_line_reads_back_as_its_json_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our ztunnel prints ztunnel's text shape beside its JSON file: both must say the same."""
    log = AccessLog(tmp_path / "access.jsonl", "trustusbank-worker")
    log.write(
        ConnectionRecord(
            direction="inbound",
            src_addr="10.244.1.7:40112",
            dst_addr="10.244.2.9:8080",
            src_identity=CONVERTER,
            src_workload="currency-converter-7d9f-abcde",
            bytes_sent=0,
            error="connection closed due to policy rejection: explicitly denied by: external-attacker/deny",
        )
    )
    text = capsys.readouterr().err.strip()
    written = json.loads((tmp_path / "access.jsonl").read_text())
    read = parse(text)
    assert read is not None
    written.pop("node")  # a constant of the JSON file, not printed
    assert read == {**written, "duration": str(written["duration"])}


def test_a_ztunnel_line_with_tabs_and_quoted_values() -> None:
    """The shape istio/ztunnel prints: tab-separated head, then key=value with quoted strings."""
    line = (
        "2026-12-03T10:02:07.123456Z\terror\taccess\tconnection complete\t"
        'src.addr=10.244.1.7:40112 src.workload="currency-converter-7d9f-abcde" '
        f'src.namespace="trustusbank-bank-vendors" src.identity="{CONVERTER}" '
        'dst.addr=10.244.2.9:8080 direction="inbound" bytes_sent=0 bytes_recv=0 duration="0ms" '
        f'error="{REJECTED} external-attacker/deny-bank"'
    )
    fields = parse(line)
    assert fields == {
        "time": "2026-12-03T10:02:07.123456Z",
        "level": "error",
        "scope": "access",
        "message": "connection complete",
        "src.addr": "10.244.1.7:40112",
        "src.workload": "currency-converter-7d9f-abcde",
        "src.namespace": "trustusbank-bank-vendors",
        "src.identity": CONVERTER,
        "dst.addr": "10.244.2.9:8080",
        "direction": "inbound",
        "bytes_sent": 0,
        "bytes_recv": 0,
        "duration": "0ms",
        "error": f"{REJECTED} external-attacker/deny-bank",
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"time": "2026-12-03T10:00:00Z"}', {"time": "2026-12-03T10:00:00Z"}),
        ("[]", None),
        ("{not json", None),
        ("Starting ztunnel version 1.31.1", None),
        ("", None),
        ("2026-12-03T10:00:00Z\tinfo\tztunnel\tready", {"time": "2026-12-03T10:00:00Z", "level": "info",
                                                        "scope": "ztunnel", "message": "ready"}),
    ],
)  # fmt: skip
def test_json_lines_pass_through_and_what_is_no_record_is_none(line: str, expected: object) -> None:
    assert parse(line) == expected


def test_kubectl_prefixes_name_the_pod() -> None:
    lines = ["[pod/ztunnel-x7k2p/istio-proxy] a line", "no prefix", "[pod/waypoint-0/agentgateway] b"]
    assert prefixed_lines(lines) == [("ztunnel-x7k2p", "a line"), ("waypoint-0", "b")]
