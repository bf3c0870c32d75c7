"""Outbound: a pod's captured connection, carried over HBONE to the destination's node proxy.

The source side never decides policy (Istio enforces at the destination); it
proves who the source is with the pod's SVID, checks that the far end is the
workload it meant to reach, and records what the destination answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from trustusbank.cluster.discovery import Destination, Unresolvable, resolve
from trustusbank.cluster.ports import HBONE_PORT
from trustusbank.cluster.topology import Pod
from trustusbank.mesh.hbone.h2 import HboneError, HboneRefused, pipe
from trustusbank.mesh.hbone.pool import HbonePool
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.ztunnel.access_log import ConnectionRecord
from trustusbank.mesh.ztunnel.labels import attempt_labels, peer_labels
from trustusbank.mesh.ztunnel.pipes import pipe_plain
from trustusbank.mesh.ztunnel.redirect import original_destination
from trustusbank.mesh.ztunnel.results import ConnectionResult, ResponseFlag, copy_flag, flag_for
from trustusbank.mesh.ztunnel.socks import ConnectRequest, Reply, SocksError, read_connect, reply
from trustusbank.telemetry.tracing import inject

if TYPE_CHECKING:
    from trustusbank.mesh.ztunnel.node import NodeProxy


class Outbound:
    def __init__(self, node: NodeProxy, tracer: trace.Tracer) -> None:
        self.node = node
        self.tracer = tracer
        self._redirected: set[asyncio.StreamWriter] = set()  # connections nftables sent, not SOCKS
        # Tunnels share HTTP/2 connections per (pod SVID, destination identity and address, pod IP).
        self.pool = HbonePool()

    async def close(self) -> None:
        """End the pooled HBONE connections (the node proxy is stopping)."""
        await self.pool.close()

    async def handle(self, pod: Pod, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        source = self.node.identity(pod)
        record = ConnectionRecord(
            "outbound",
            src_addr=f"{pod.ip}:{peer[1]}",
            dst_addr="",
            src_workload=pod.name,
            src_namespace=pod.namespace,
            src_identity=source.uri,
        )
        redirected = original_destination(writer)
        if redirected is not None:  # nftables sent it here: no SOCKS, the kernel knows where it went
            request = ConnectRequest(*redirected)
            self._redirected.add(writer)
        else:
            try:
                request = await read_connect(reader, writer)
            except (SocksError, asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
        try:
            await self._route(pod, source, request, reader, writer, record)
        finally:
            self._redirected.discard(writer)

    async def _route(
        self,
        pod: Pod,
        source: SpiffeId,
        request: ConnectRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ConnectionRecord,
    ) -> None:
        record.dst_addr = f"{request.host}:{request.port}"
        try:
            dest = resolve(self.node.topology, request.host, request.port, pod.namespace)
        except Unresolvable as exc:
            await self._refuse(writer, Reply.HOST_UNREACHABLE, record, str(exc))
            return
        record.dst_addr = dest.authority
        record.dst_service = dest.service.fqdn if dest.service else None
        if dest.pod is not None:
            record.dst_workload, record.dst_namespace = dest.pod.name, dest.pod.namespace
        if dest.waypoint is not None:
            waypoint = self.node.topology.waypoint(dest.waypoint)
            if waypoint is None or dest.service is None:
                # Fail closed: a Service bound to a waypoint is never reached around it.
                await self._refuse(
                    writer, Reply.NOT_ALLOWED, record, f"waypoint {dest.waypoint} is not deployed"
                )
                return
            # To the waypoint, addressed to the Service (a VIP on a cluster): it routes from there.
            authority = f"{dest.service.fqdn}:{request.port}"
            await self._hbone(pod, source, waypoint, authority, dest, reader, writer, record)
        elif dest.captured and dest.pod is not None:
            await self._hbone(pod, source, dest.pod, dest.authority, dest, reader, writer, record)
        else:
            await self._passthrough(pod, source, dest, reader, writer, record)

    async def _answer(self, writer: asyncio.StreamWriter, code: Reply) -> None:
        """SOCKS gets its reply; a redirected connection is simply used, or closed."""
        if writer not in self._redirected:
            await reply(writer, code)

    async def _refuse(
        self, writer: asyncio.StreamWriter, code: Reply, record: ConnectionRecord, error: str
    ) -> None:
        record.error = error
        self.node.access.write(record)
        with contextlib.suppress(ConnectionError):
            await self._answer(writer, code)
        writer.close()

    async def _passthrough(
        self,
        pod: Pod,
        source: SpiffeId,
        dest: Destination,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ConnectionRecord,
    ) -> None:
        attempt = attempt_labels(pod.deployment, pod.namespace, source.uri, dest)
        # Plain TCP: no mTLS, so ztunnel reports no source principal.
        labels = peer_labels("source", pod, None, dest.pod, None, dest.service, False)
        if dest.pod is not None:
            labels["destination_principal"] = self.node.identity(dest.pod).uri
        with ConnectionResult(self.node.metrics, labels) as result:
            try:
                up_reader, up_writer = await asyncio.open_connection(dest.host, dest.port)
            except OSError as exc:
                self.node.metrics.attempts.labels(**attempt, outcome="error").inc()
                result.record(ResponseFlag.CONNECT)
                await self._refuse(
                    writer, Reply.CONNECTION_REFUSED, record, f"connect {dest.authority}: {exc}"
                )
                return
            self.node.metrics.attempts.labels(**attempt, outcome="allowed").inc()
            await self._answer(writer, Reply.SUCCEEDED)
            record.bytes_sent, record.bytes_recv = await pipe_plain(reader, writer, up_reader, up_writer)
            result.record(received=record.bytes_sent, sent=record.bytes_recv)
        self.node.access.write(record)

    async def _hbone(
        self,
        pod: Pod,
        source: SpiffeId,
        target: Pod,
        authority: str,
        dest: Destination,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ConnectionRecord,
    ) -> None:
        """Tunnel to `target` (the destination pod, or the waypoint in front of it)."""
        dest_identity = SpiffeId(self.node.topology.trust_domain, target.namespace, target.service_account)
        record.dst_identity = dest_identity.uri
        record.dst_hbone_addr = f"{target.ip}:{HBONE_PORT}"
        labels = peer_labels("source", pod, source.uri, target, dest_identity.uri, dest.service, True)
        attempt = attempt_labels(pod.deployment, pod.namespace, source.uri, dest)
        attributes = {
            "src.identity": source.uri,
            "dst.identity": dest_identity.uri,
            "dst.addr": authority,
            "direction": "outbound",
        }
        with (
            ConnectionResult(self.node.metrics, labels) as result,  # opened before the CONNECT is answered
            self.tracer.start_as_current_span(
                "ztunnel outbound", kind=SpanKind.CLIENT, attributes=attributes
            ) as span,
        ):
            record.trace_id = format(span.get_span_context().trace_id, "032x")
            try:
                tunnel = await self.pool.open_tunnel(
                    target.ip,
                    HBONE_PORT,
                    authority=authority,
                    source=source,
                    ssl_context=self.node.secrets.ssl_client_context(source),
                    expected_identity=dest_identity,
                    headers=inject(),
                    local_addr=(pod.ip, 0),
                )
            except HboneRefused as exc:
                self.node.metrics.attempts.labels(**attempt, outcome="denied").inc()
                result.record(flag_for(exc))
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                await self._refuse(writer, Reply.NOT_ALLOWED, record, str(exc))
                return
            except (HboneError, OSError, TimeoutError) as exc:
                self.node.metrics.attempts.labels(**attempt, outcome="error").inc()
                result.record(flag_for(exc))
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                await self._refuse(writer, Reply.CONNECTION_REFUSED, record, f"hbone: {exc}")
                return
            self.node.metrics.attempts.labels(**attempt, outcome="allowed").inc()
            await self._answer(writer, Reply.SUCCEEDED)
            try:
                record.bytes_sent, record.bytes_recv = await pipe(tunnel, reader, writer)
            except Exception as exc:
                result.record(copy_flag(exc))
                raise
            span.set_attribute("bytes_sent", record.bytes_sent)
            span.set_attribute("bytes_recv", record.bytes_recv)
            # Istio's sense for either reporter: received is what the pod sent, sent what came back.
            result.record(received=record.bytes_sent, sent=record.bytes_recv)
        self.node.access.write(record)
