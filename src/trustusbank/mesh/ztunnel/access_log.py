"""ztunnel-style access logs: one structured record per connection, with ztunnel's field names.

Records go to a JSON-lines file (what Loki would ingest) and, in ztunnel's
`key=value` shape, to stderr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustusbank.telemetry.jsonlog import JsonLinesLog


@dataclass
class ConnectionRecord:
    direction: str  # "inbound" | "outbound"
    src_addr: str
    dst_addr: str
    src_workload: str | None = None
    src_namespace: str | None = None
    src_identity: str | None = None
    dst_hbone_addr: str | None = None
    dst_service: str | None = None
    dst_workload: str | None = None
    dst_namespace: str | None = None
    dst_identity: str | None = None
    bytes_sent: int = 0
    bytes_recv: int = 0
    error: str | None = None
    trace_id: str | None = None
    started: float = field(default_factory=time.monotonic)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "src.addr": self.src_addr,
            "src.workload": self.src_workload,
            "src.namespace": self.src_namespace,
            "src.identity": self.src_identity,
            "dst.addr": self.dst_addr,
            "dst.hbone_addr": self.dst_hbone_addr,
            "dst.service": self.dst_service,
            "dst.workload": self.dst_workload,
            "dst.namespace": self.dst_namespace,
            "dst.identity": self.dst_identity,
            "direction": self.direction,
            "bytes_sent": self.bytes_sent,
            "bytes_recv": self.bytes_recv,
            "duration": f"{(time.monotonic() - self.started) * 1000:.0f}ms",
        }
        if self.error:
            out["error"] = self.error
        if self.trace_id:
            out["trace_id"] = self.trace_id
        return {k: v for k, v in out.items() if v is not None}


class AccessLog:
    def __init__(self, path: Path, node: str) -> None:
        self._log = JsonLinesLog(path, node=node)
        self.path = path

    def write(self, record: ConnectionRecord) -> None:
        level, message = ("error", "connection failed") if record.error else ("info", "connection complete")
        self._log.write(level, "access", message, record.fields())
