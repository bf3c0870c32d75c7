"""Serve an `MCPServer` over streamable HTTP the way every workload here does.

One place decides which Host headers an MCP server accepts: the SDK rejects
unknown hosts (DNS-rebinding protection), and behind the mesh requests arrive
addressed to Service names and to the waypoint, not to 127.0.0.1.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from trustusbank.env import ALLOWED_HOSTS, POD_IP

WAYPOINT_FQDN = "trustusbank-agentgw.trustusbank-platform.svc.cluster.local"


def service_hostnames(service: str, namespace: str) -> list[str]:
    """Every name a Service is reachable by inside the cluster, shortest first."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def allowed_hosts(service: str, namespace: str) -> list[str]:
    """Host header values this server accepts, with or without a port."""
    names = ["127.0.0.1", "localhost", "[::1]", *service_hostnames(service, namespace), WAYPOINT_FQDN]
    pod_ip = POD_IP.read()
    if pod_ip:  # inside an embedded pod, its own address is a name for it too
        names.append(pod_ip)
    names += ALLOWED_HOSTS.read()
    return [form for name in names for form in (name, f"{name}:*")]


def new_server(name: str, *, version: str, instructions: str) -> MCPServer:
    """An MCPServer with a /healthz route and the SDK's console logging kept quiet."""
    server = MCPServer(name, version=version, instructions=instructions, log_level="WARNING")

    @server.custom_route("/healthz", methods=["GET"])  # type: ignore[untyped-decorator]  # the SDK leaves it untyped
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "server": name, "version": version})

    return server


def streamable_http_app(server: MCPServer, *, service: str, namespace: str) -> Starlette:
    """The server's ASGI app at /mcp, accepting its Service names as Host."""
    hosts = allowed_hosts(service, namespace)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )
    return server.streamable_http_app(streamable_http_path="/mcp", transport_security=security)
