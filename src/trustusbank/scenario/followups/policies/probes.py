"""What the follow-on demos observe the mesh with: MCP calls made *as* a pod, and the waypoint's logs.

A call is made as a pod by handing it to that pod's outbound capture (its node proxy's
SOCKS port at `<pod-ip>:15001`), as every process inside the pod does: the node proxy
then carries it over HBONE with the pod's own SVID, so the waypoint and the destination
see the pod's SPIFFE identity. Each call is one stateless MCP request (protocol
2026-07-28: one POST, the JSON-RPC envelope in the body, mirrored in the `MCP-*` headers),
so one call is exactly one HTTP request: what a rate limit counts.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp.shared.inbound import MCP_METHOD_HEADER, MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from trustusbank.cluster.ports import OUTBOUND_PORT
from trustusbank.cluster.topology import Pod
from trustusbank.errors import ConfigError
from trustusbank.scenario.cluster import Cluster, ClusterUnavailable

PROTOCOL = "2026-07-28"
WAYPOINT_GATEWAY = "trustusbank-platform/trustusbank-agentgw"
GATEWAY_URL = "http://trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080"
CONVERTER_URL = "http://currency-converter.trustusbank-bank-vendors.svc.cluster.local:8000/mcp"


def route_url(route: str) -> str:
    """A RemoteMCPServer URL on the waypoint (`account`, `transaction`, `ticket`, `currency`)."""
    return f"{GATEWAY_URL}/mcp/{route}"


@dataclass
class McpAnswer:
    status: int  # HTTP status; 0 when the connection itself failed
    result: dict[str, Any] | None = None
    error: str | None = None  # JSON-RPC error message, or the transport failure

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.result is not None and not self.result.get("isError")

    @property
    def structured(self) -> dict[str, Any]:
        content = (self.result or {}).get("structuredContent")
        return content if isinstance(content, dict) else {}

    def describe(self) -> str:
        if self.ok:
            return f"HTTP {self.status}, result"
        if self.result is not None and self.result.get("isError"):
            texts = [c.get("text", "") for c in self.result.get("content") or [] if isinstance(c, dict)]
            return f"HTTP {self.status}, tool error: {' '.join(texts)[:160]}"
        return f"HTTP {self.status}" + (f", {self.error}" if self.error else "")


def _request_body(call_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    meta = {
        PROTOCOL_VERSION_META_KEY: PROTOCOL,
        CLIENT_INFO_META_KEY: {"name": "trustusbank-demo", "version": "1"},
        CLIENT_CAPABILITIES_META_KEY: {},
    }
    return {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta},
    }


def _decode(response: httpx2.Response) -> dict[str, Any] | None:
    """The JSON-RPC message of a JSON or SSE answer (the last `data:` event), if any."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = events[-1] if events else ""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class PodMcp:
    """MCP `tools/call` requests from inside one pod, through its node proxy."""

    def __init__(self, cluster: Cluster, namespace: str, deployment: str, *, reuse: bool = True) -> None:
        self.pod = cluster.pod(namespace, deployment)
        self.proxy = f"socks5h://{self.pod.ip}:{OUTBOUND_PORT}"
        self.reuse = reuse  # False: a new connection (a new HBONE tunnel) for every call
        self._client: httpx2.AsyncClient | None = None
        self._ids = 0

    def _new_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(proxy=self.proxy, trust_env=False, timeout=20)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> PodMcp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(self, url: str, tool: str, arguments: dict[str, Any]) -> McpAnswer:
        self._ids += 1
        headers = {
            "accept": "application/json, text/event-stream",
            MCP_PROTOCOL_VERSION_HEADER: PROTOCOL,
            MCP_METHOD_HEADER: "tools/call",
            MCP_NAME_HEADER: tool,
        }
        body = _request_body(self._ids, tool, arguments)
        client = self._client if self.reuse else None
        if client is None:
            client = self._new_client()
            if self.reuse:
                self._client = client
        try:
            response = await client.post(url, json=body, headers=headers)
        except httpx2.HTTPError as exc:
            return McpAnswer(0, error=f"{type(exc).__name__}: {exc}")
        finally:
            if not self.reuse:
                await client.aclose()
        message = _decode(response)
        if message is None:
            return McpAnswer(response.status_code, error=response.text.strip()[:200] or None)
        if isinstance(message.get("error"), dict):
            return McpAnswer(response.status_code, error=str(message["error"].get("message")))
        result = message.get("result")
        return McpAnswer(response.status_code, result if isinstance(result, dict) else None)


# --- the waypoint's side ------------------------------------------------------------------------


def waypoint_pod(cluster: Cluster) -> Pod:
    pod = next((p for p in cluster.topology.pods if p.gateway == WAYPOINT_GATEWAY), None)
    if pod is None:
        raise ClusterUnavailable(f"no waypoint pod for {WAYPOINT_GATEWAY} in the running cluster")
    return pod


def waypoint_request_log(cluster: Cluster) -> Path:
    """One JSON line per request the waypoint handled (both identities, route, decision, rule)."""
    return cluster.files.waypoint_log(WAYPOINT_GATEWAY)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def json_lines_since(path: Path, offset: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open("rb") as stream:
        stream.seek(offset)
        lines = stream.read().decode("utf-8", "replace").splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line still being written
    return records


def text_since(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as stream:
        stream.seek(offset)
        return stream.read().decode("utf-8", "replace")


class ConfigRefused(ConfigError, RuntimeError):
    """The waypoint refused the new configuration and kept the last good one."""


async def wait_for_waypoint(
    cluster: Cluster, policy: str, *, present: bool, since: int, within: float = 10.0
) -> float:
    """Seconds until the waypoint logs a configuration with (or without) `policy`, after byte `since`.

    The waypoint names the AgentgatewayPolicies of every configuration it loads; a
    refused one is an error line and the old configuration stays (ConfigRefused).
    """
    pod = waypoint_pod(cluster)
    log = cluster.files.pod_log(pod.namespace, pod.name)
    started = time.monotonic()
    while time.monotonic() - started < within:
        for line in reversed(text_since(log, since).splitlines()):
            if "configuration change refused" in line:
                raise ConfigRefused(line.split("refused", 1)[1].strip(" :,"))
            if "configuration loaded" in line and ": policies " in line:
                names = {n.strip() for n in line.rsplit(": policies ", 1)[1].split(",")}
                if (policy in names) == present:
                    return time.monotonic() - started
                break
        await asyncio.sleep(0.05)
    state = "load" if present else "drop"
    raise TimeoutError(f"the waypoint did not {state} {policy} within {within:.0f}s (see {log})")


def waypoint_log_offset(cluster: Cluster) -> int:
    pod = waypoint_pod(cluster)
    return size(cluster.files.pod_log(pod.namespace, pod.name))
