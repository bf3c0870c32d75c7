"""What a kind cluster's observability stack answers, for tests with no cluster.

Prometheus's `/api/v1/alerts` and mailpit's `/api/v1/messages` in their documented shapes,
served for real on 127.0.0.1, answering whatever the test puts in `alerts` and `messages`;
and ztunnel access-log lines as `kubectl logs --prefix` prints them.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
ATTACKER = "spiffe://cluster.local/ns/external-attacker/sa/mock-attacker"
DENY = (
    "connection closed due to policy rejection: explicitly denied by: external-attacker/deny-bank-to-attacker"
)


class Observability:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []

    def app(self, _: str) -> Starlette:
        async def alerts(_: Request) -> JSONResponse:
            return JSONResponse({"status": "success", "data": {"alerts": self.alerts}})

        async def messages(request: Request) -> JSONResponse:
            limit = int(request.query_params.get("limit", "50"))
            return JSONResponse({"total": len(self.messages), "messages": self.messages[:limit]})

        return Starlette(routes=[Route("/api/v1/alerts", alerts), Route("/api/v1/messages", messages)])


def firing(name: str, active_at: str, value: str = "1e+00", **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": "critical", **labels},
        "annotations": {"summary": f"{name} fired"},
        "state": "firing",
        "activeAt": active_at,
        "value": value,
    }


def mail(message_id: str, name: str, created: str) -> dict[str, Any]:
    return {"ID": message_id, "Subject": f"[FIRING:1] {name} (critical)", "Created": created}


def ztunnel_line(pod: str, moment: str, error: str | None = DENY, source: str = CONVERTER) -> str:
    failure = f' error="{error}"' if error else ""
    return (
        f"[pod/{pod}/istio-proxy] {moment}\t{'error' if error else 'info'}\taccess\tconnection complete\t"
        f'src.addr=10.244.1.7:40112 src.identity="{source}" dst.addr=10.244.2.9:8080 '
        f'dst.identity="{ATTACKER}" direction="inbound" bytes_sent=0 bytes_recv=0{failure}'
    )
