"""Inbound: verify who is calling, ask AuthorizationPolicy, then deliver plain TCP to the pod.

Order matters and follows ztunnel: the mTLS handshake proves the peer's SPIFFE
ID against the trust bundle (a headers-only claim counts for nothing), policy is
evaluated for the *destination* workload on that proven identity, and only an
allowed connection is ever connected to the app. Plaintext to a pod's ports
meets the same policy, and is refused outright when PeerAuthentication is STRICT.

An admitted connection is not admitted for ever: each one is tracked while it lasts,
and when the policies change they are all judged again by the same decision and the
ones now denied are closed (ztunnel's `PolicyWatcher`). Otherwise a pooled tunnel
opened before a DENY would keep carrying calls the DENY was written to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from typing import TYPE_CHECKING, Any

from h2.errors import ErrorCodes
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from trustusbank.cluster.topology import Pod
from trustusbank.manifests.istio.objects import Connection, Workload
from trustusbank.mesh.authz.evaluate import ERROR_FMT, STRICT_REFUSAL, Decision
from trustusbank.mesh.authz.peer_authn import mtls_mode
from trustusbank.mesh.hbone.h2 import READ_CHUNK, HboneStream, pipe
from trustusbank.mesh.hbone.server import HboneRequest, serve
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.ztunnel.access_log import ConnectionRecord
from trustusbank.mesh.ztunnel.connections import LiveConnection, LiveConnections
from trustusbank.mesh.ztunnel.labels import peer_labels
from trustusbank.mesh.ztunnel.pipes import pipe_plain
from trustusbank.mesh.ztunnel.policy_store import decide
from trustusbank.mesh.ztunnel.results import ConnectionResult, ResponseFlag, copy_flag
from trustusbank.telemetry.tracing import extract

if TYPE_CHECKING:
    from trustusbank.mesh.ztunnel.node import NodeProxy

log = logging.getLogger(__name__)

POLICY_REJECTION = "connection closed due to policy rejection: {reason}"
# ztunnel's error for a connection closed by a policy update, plus the deciding reason as above.
POLICY_CHANGE = "connection closed due to policy change: {reason}"


class Inbound:
    def __init__(self, node: NodeProxy, tracer: trace.Tracer) -> None:
        self.node = node
        self.tracer = tracer
        self.connections = LiveConnections()
        # Bumped by every policy update: a CONNECT decided under an older set is judged again on delivery.
        self._generation = 0
        self._pending: dict[int, tuple[ConnectionRecord, ConnectionResult, int]] = {}

    def _decide(self, pod: Pod, source: SpiffeId | None, source_ip: str, port: int) -> Decision:
        workload = Workload(pod.deployment, pod.namespace, pod.labels)
        return decide(self.node.policies, Connection(source, source_ip, pod.ip, port), workload)

    def _plaintext_refusal(self, pod: Pod, port: int) -> str | None:
        """Why plaintext to `port` is refused before AuthorizationPolicy is asked, or None."""
        workload = Workload(pod.deployment, pod.namespace, pod.labels)
        try:
            mode = mtls_mode(workload, port, self.node.policies.peer_authentication)
        except Exception as exc:  # fail closed
            log.exception("peer authentication lookup failed")
            return f"peer authentication failed closed: {exc}"
        return STRICT_REFUSAL if mode == "STRICT" else None

    def _count_denial(self, pod: Pod, decision: Decision, source_principal: str | None) -> None:
        self.node.metrics.denied.labels(
            policy=decision.policy or "",
            reason=decision.metric_reason,
            source_principal=source_principal or "unknown",
            destination_workload=pod.deployment,
            destination_workload_namespace=pod.namespace,
        ).inc()

    def _deny(
        self, pod: Pod, record: ConnectionRecord, decision: Decision, source_principal: str | None
    ) -> None:
        record.error = POLICY_REJECTION.format(reason=decision.reason)
        self._count_denial(pod, decision, source_principal)
        self.node.access.write(record)

    # -- policy updates ------------------------------------------------------
    def recheck(self) -> int:
        """Judge every live inbound connection under the policies now in force; close the denied ones.

        Call after the policy set changed (including to unreadable, which denies
        all). Each closed connection writes its access-log record, with the reason,
        when its handler finishes. Returns how many were closed.
        """
        self._generation += 1
        closed = 0
        for live in self.connections.snapshot():
            if not live.closed and self._recheck_one(live):
                closed += 1
        return closed

    def _recheck_one(self, live: LiveConnection) -> bool:
        decision = self._judge(live)
        if decision.allowed:
            return False
        live.record.error = POLICY_CHANGE.format(reason=decision.reason)
        self._count_denial(live.pod, decision, live.principal)
        log.info(
            "connection %s closed because it's no longer allowed after a policy update: %s",
            live,
            decision.reason,
        )
        self.connections.close(live)
        return True

    def _judge(self, live: LiveConnection) -> Decision:
        """The decision a new connection like `live` would get now: the one made at connect time."""
        try:
            if live.plaintext:
                refusal = self._plaintext_refusal(live.pod, live.port)
                if refusal is not None:
                    return Decision(False, refusal)
            return self._decide(live.pod, live.source, live.source_ip, live.port)
        except Exception as exc:  # fail closed
            log.exception("re-checking %s failed; closing it", live)
            return Decision(False, ERROR_FMT.format(error=f"{type(exc).__name__}: {exc}"))

    # -- HBONE ---------------------------------------------------------------
    async def serve_hbone(self, pod: Pod, identity: SpiffeId, port: int) -> asyncio.AbstractServer:
        def on_handshake_error(peer: Any, reason: str) -> None:
            self.node.metrics.handshake_errors.labels(reason=reason.split(":")[0][:60]).inc()
            record = ConnectionRecord("inbound", src_addr=_addr(peer), dst_addr=f"{pod.ip}:{port}")
            record.dst_workload, record.dst_namespace, record.dst_identity = (
                pod.name,
                pod.namespace,
                identity.uri,
            )
            record.error = f"tls handshake failed: {reason}"
            self.node.access.write(record)

        return await serve(
            pod.ip,
            port,
            ssl_context_for=lambda: self.node.secrets.ssl_server_context(identity),
            authorize=lambda request: self._authorize(pod, identity, request),
            handler=lambda request, stream: self._deliver(pod, request, stream),
            on_handshake_error=on_handshake_error,
        )

    def _authorize(self, pod: Pod, identity: SpiffeId, request: HboneRequest) -> int:
        source = request.peer_identity
        source_ip = _host(request.peer_addr)
        host, port = request.host, request.port
        record = ConnectionRecord(
            "inbound",
            src_addr=_addr(request.peer_addr),
            dst_addr=f"{host}:{port}",
            src_identity=source.uri if source else None,
            dst_hbone_addr=f"{pod.ip}:{request.local_port}" if request.local_port else None,
            dst_workload=pod.name,
            dst_namespace=pod.namespace,
            dst_identity=identity.uri,
        )
        src_pod = self.node.topology.pod_by_ip(source_ip)
        if src_pod is not None:
            record.src_workload, record.src_namespace = src_pod.name, src_pod.namespace
        if host != pod.ip or pod.target_port(port) is None:  # ztunnel's early deny: logged, not counted
            record.error = f"no workload port {host}:{port} behind this tunnel"
            self.node.access.write(record)
            return 503
        labels = peer_labels(
            "destination", src_pod, source.uri if source else None, pod, identity.uri, None, True
        )
        result = ConnectionResult(self.node.metrics, labels)  # opened before policy is asked
        decision = self._decide(pod, source, source_ip, port)
        if not decision.allowed:
            self._deny(pod, record, decision, source.uri if source else None)
            result.record(ResponseFlag.DENY)
            return 401
        self._pending[id(request)] = (record, result, self._generation)
        return 200

    async def _deliver(self, pod: Pod, request: HboneRequest, stream: HboneStream) -> None:
        record, result, generation = self._pending.pop(id(request))
        live = self.connections.track(
            pod, request.port, request.peer_identity, _host(request.peer_addr), record
        )
        if generation != self._generation:  # a policy update came between the decision and now
            self._recheck_one(live)
        with result:
            try:
                await self._deliver_tracked(pod, request, stream, live, result)
            finally:
                self.connections.release(live)

    async def _deliver_tracked(
        self,
        pod: Pod,
        request: HboneRequest,
        stream: HboneStream,
        live: LiveConnection,
        result: ConnectionResult,
    ) -> None:
        record = live.record
        context = extract(request.headers)
        attributes = {"src.identity": record.src_identity or "", "dst.identity": record.dst_identity or ""}
        with self.tracer.start_as_current_span(
            "ztunnel inbound", context=context, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            record.trace_id = format(span.get_span_context().trace_id, "032x")
            if live.closed:
                span.set_status(Status(StatusCode.ERROR, record.error))
                result.record(ResponseFlag.DENY)
                self.node.access.write(record)
                await stream.reset(ErrorCodes.CANCEL)
                return
            try:
                app_reader, app_writer = await self.connect_app(pod, request.port, _host(request.peer_addr))
            except OSError as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                record.error = f"connect to the pod: {exc}"
                result.record(ResponseFlag.CONNECT)
                self.node.access.write(record)
                await stream.close()
                return
            tunnel = _TrackedStream(stream, live)
            piping = asyncio.create_task(pipe(tunnel, app_reader, app_writer))
            live.on_close(piping.cancel)
            try:
                await piping
            except asyncio.CancelledError:
                if not live.closed or _being_cancelled():
                    raise
                span.set_status(Status(StatusCode.ERROR, record.error))
            except Exception as exc:
                result.record(copy_flag(exc), received=tunnel.read_bytes, sent=tunnel.written)
                raise
            finally:
                if live.closed:  # `pipe` may have been cancelled before it started: close both sides here
                    await tunnel.close()
                    app_writer.close()
            record.bytes_recv, record.bytes_sent = tunnel.written, tunnel.read_bytes
        # Closed by a policy change: ztunnel's late rejection, flagged as a denial too.
        flag = ResponseFlag.DENY if live.closed else ResponseFlag.NONE
        result.record(flag, received=tunnel.read_bytes, sent=tunnel.written)
        self.node.access.write(record)

    async def connect_app(
        self, pod: Pod, port: int, source_ip: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the app from the caller's own address, as ztunnel does in the pod's namespace.

        The app then sees the source IP of the workload whose identity the mesh verified, which is
        what an app-level check (an agent's AccessPolicy) keys on. Given the pod's network namespace,
        the connection is made inside it (where every 127/8 address is the pod's own loopback);
        otherwise on the shared loopback, falling back to an unbound connect.
        """
        netns = self.node.namespaces.get(pod.ref)
        if netns is not None:
            return await netns.open_connection(pod.app_ip, port, local_addr=(source_ip, 0))
        try:
            return await asyncio.open_connection(pod.app_ip, port, local_addr=(source_ip, 0))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise
            return await asyncio.open_connection(pod.app_ip, port)

    # -- plaintext -----------------------------------------------------------
    async def plaintext(
        self, pod: Pod, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        record = ConnectionRecord(
            "inbound",
            src_addr=_addr(peer),
            dst_addr=f"{pod.ip}:{port}",
            dst_workload=pod.name,
            dst_namespace=pod.namespace,
            dst_identity=self.node.identity(pod).uri,
        )
        source_ip = str(peer[0])
        source = self.node.topology.pod_by_ip(source_ip)
        labels = peer_labels("destination", source, None, pod, record.dst_identity, None, False)
        with ConnectionResult(self.node.metrics, labels) as result:
            if not self._admit_plaintext(pod, port, source_ip, record, result):
                writer.close()
                return
            live = self.connections.track(pod, port, None, source_ip, record, plaintext=True)
            try:
                await self._pipe_plaintext(pod, port, reader, writer, live, result)
            finally:
                self.connections.release(live)

    def _admit_plaintext(
        self, pod: Pod, port: int, source_ip: str, record: ConnectionRecord, result: ConnectionResult
    ) -> bool:
        """PeerAuthentication, then AuthorizationPolicy; a refusal is logged and counted here."""
        refusal = self._plaintext_refusal(pod, port)
        if refusal is not None:
            record.error = f"connection closed: {refusal}"
            # istiod hands STRICT to ztunnel as a policy: its refusal is flagged as a denial too.
            result.record(ResponseFlag.DENY)
            self.node.access.write(record)
            return False
        decision = self._decide(pod, None, source_ip, port)  # denies all if the policy set is unreadable
        if not decision.allowed:
            self._deny(pod, record, decision, None)
            result.record(ResponseFlag.DENY)
            return False
        return True

    async def _pipe_plaintext(
        self,
        pod: Pod,
        port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        live: LiveConnection,
        result: ConnectionResult,
    ) -> None:
        record = live.record
        try:
            app_reader, app_writer = await self.connect_app(pod, port, live.source_ip)
        except OSError as exc:
            record.error = f"connect to the pod: {exc}"
            result.record(ResponseFlag.CONNECT)
            self.node.access.write(record)
            writer.close()
            return

        def close_both() -> None:  # both copies end at once, and still report what they moved
            writer.transport.abort()
            app_writer.transport.abort()

        live.on_close(close_both)
        record.bytes_recv, record.bytes_sent = await pipe_plain(reader, writer, app_reader, app_writer)
        flag = ResponseFlag.DENY if live.closed else ResponseFlag.NONE
        result.record(flag, received=record.bytes_recv, sent=record.bytes_sent)
        self.node.access.write(record)
        with contextlib.suppress(OSError):
            writer.close()


class _TrackedStream:
    """The HBONE stream as `pipe` uses it, counting bytes both ways.

    Once its connection is closed by a policy update, closing it resets the stream
    (RST_STREAM CANCEL) instead of ending it cleanly, so the peer cannot mistake the
    cut for the app's normal end of data.
    """

    def __init__(self, stream: HboneStream, live: LiveConnection) -> None:
        self.stream = stream
        self.live = live
        self.read_bytes = 0
        self.written = 0

    async def read(self, n: int = READ_CHUNK) -> bytes:
        data = await self.stream.read(n)
        self.read_bytes += len(data)
        return data

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)
        self.written += len(data)

    async def write_eof(self) -> None:
        await self.stream.write_eof()

    async def close(self) -> None:
        if self.live.closed:
            await self.stream.reset(ErrorCodes.CANCEL)
        await self.stream.close()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _host(peer: Any) -> str:
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _addr(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
