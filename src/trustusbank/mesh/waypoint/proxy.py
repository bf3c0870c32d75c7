"""The waypoint's HTTP proxy: route, limit, authorize (HTTP, then MCP), guard, forward, guard, filter.

Order follows agentgateway, top to bottom:

1. route match; local rate limit; HTTP-level authorization (no MCP context);
2. for MCP backends, the request is parsed exactly as the server will execute it,
   every message the backend's MCP policy judges must be allowed, and a request
   method agentgateway does not serve is refused (never forwarded unjudged);
3. if the route has a guard (`traffic.extProc`, `guard_call`), each `tools/call`
   is sent to it (`POST /request`): a reject is a 403 deny, rule `mcp-guard/<rule>`;
4. forward to the backend;
5. with a guard, a `tools/list` or `tools/call` answer is read whole and its
   response sent to the guard (`POST /response`): pass, mask (the replacement is
   returned instead, in the same framing) or reject (502);
6. every list answer (`tools/list`, `prompts/list`, `resources/list`,
   `resources/templates/list`) is filtered to what the caller may use (after the
   guard, so a masked listing is filtered too).

A guard that cannot judge (unreachable, no answer within its timeout, not 200, an
answer outside the contract) refuses the request: 503 before forwarding, 502 after,
logged and counted as a deny whose rule is `mcp-guard`. For AI backends the chat
completion is prepared for the provider and its answer's model and token counts
are recorded (`llm`).
Anything the proxy cannot judge is refused, never forwarded, and every refusal
is logged and counted: a request that came through no live tunnel (403), and a
body that does not arrive within BODY_TIMEOUT (408, and the connection closed,
so a client trickling its body cannot hold a request open). A client that goes
away ends its request: a body cut short is never forwarded, and an answer still
on its way (an SSE stream, say) is cancelled, which closes the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpcore
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from trustusbank.cluster.topology import Topology
from trustusbank.errors import RefusedError, UnavailableError
from trustusbank.manifests.gateway.objects import LlmProvider
from trustusbank.manifests.istio.objects import AuthorizationPolicy
from trustusbank.mesh.authz.cel import CelDecision, Identity, McpInfo, RequestInfo
from trustusbank.mesh.authz.l7 import HttpRequest, authorize_request
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.waypoint.guard_call import (
    GUARD_TIMEOUT,
    Exchange,
    GuardClient,
    GuardUnavailable,
    Verdict,
    request_object,
)
from trustusbank.mesh.waypoint.ingress import Caller, Ingress
from trustusbank.mesh.waypoint.llm import LlmRefused, LlmRequest, log_fields, prepare_request, read_usage
from trustusbank.mesh.waypoint.mcp import (
    LISTS,
    ItemKind,
    McpMessage,
    McpRefused,
    McpRequest,
    filter_list,
    jsonrpc_error,
    parse_request,
)
from trustusbank.mesh.waypoint.mcp.answer import read_answer
from trustusbank.mesh.waypoint.ratelimit import RATE_LIMITED
from trustusbank.mesh.waypoint.routes import Backend, Guard, RouteMatch, WaypointConfig
from trustusbank.mesh.waypoint.telemetry import RequestRecord, WaypointLog, WaypointMetrics, handshake_reason
from trustusbank.telemetry.tracing import extract, inject

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY = 1024 * 1024
BODY_TIMEOUT = 30.0  # seconds from the request's headers to the end of its body
NO_IDENTITY = "no verified peer identity"
MAX_LLM_RESPONSE = 8 * 1024 * 1024  # how much of a model's answer is kept to read its usage from
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"content-length",
    b"traceparent",
    b"tracestate",
}
# The decision logged for a request that failed rather than being judged: an unreachable or
# misbehaving backend, or the waypoint's own fault. Never a deny: no policy refused it.
ERROR = "error"
# What a failed backend connection raises (httpcore's transport errors, a socket's OSError).
UPSTREAM_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.TimeoutException,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
    OSError,
)
FORBIDDEN = -32001  # JSON-RPC server error range: "not allowed by policy"
METHOD_NOT_FOUND = -32601
GUARD_UNAVAILABLE = -32002  # JSON-RPC server error range: "the guard did not judge this"
GUARD_RULE = "mcp-guard"
GUARDED_REQUESTS = ("tools/call",)  # sent to the guard before the backend (its request rules)
GUARDED_ANSWERS = ("tools/list", "tools/call")  # answers sent to the guard before the caller
MAX_GUARDED_ANSWER = 8 * 1024 * 1024  # an answer the guard judges is read whole, up to this


class ClientGone(UnavailableError):
    """The caller's connection ended before its request was answered."""


class Denied(RefusedError):
    def __init__(
        self, status: int, body: bytes, reason: str, rule: str | None = None, *, close: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.body = body
        self.reason = reason
        self.rule = rule
        self.close = close  # answer with `Connection: close`: the request was not read to its end


def _identity(spiffe: SpiffeId | None) -> Identity | None:
    return Identity(spiffe.trust_domain, spiffe.namespace, spiffe.service_account) if spiffe else None


def _mcp_info(message: McpMessage) -> McpInfo:
    return McpInfo(
        method_name=message.method or "",
        tool_name=message.tool_name,
        tool_target=None,
        tool_arguments=message.tool_arguments,
        prompt_name=message.prompt_name,
        resource_uri=message.resource_uri,
        task_id=message.task_id,
    )


def _judged(message: McpMessage) -> list[McpInfo]:
    """What agentgateway authorizes for one judged message: all must be allowed.

    `subscriptions/listen` is authorized once per resource it subscribes to, each as a resource
    (mcp/session.rs), and not at all when it names none; anything else is one decision.
    """
    if message.method == "subscriptions/listen":
        return [McpInfo("subscriptions/listen", resource_uri=uri) for uri in message.subscribed_uris]
    return [_mcp_info(message)]


def _listed_info(kind: ItemKind, name: str) -> McpInfo:
    """A listed item, judged as the request that would use it (agentgateway mcp/handler.rs merge_*)."""
    if kind == "tool":
        return McpInfo("tools/call", tool_name=name)
    if kind == "prompt":
        return McpInfo("prompts/get", prompt_name=name)
    return McpInfo("resources/read", resource_uri=name)


def _target(message: McpMessage) -> str:
    """What a message names (tool, prompt, resource or task), for logs and error texts."""
    return message.tool_name or message.prompt_name or message.resource_uri or message.task_id or ""


def _rule(where: str, decision: CelDecision) -> str | None:
    return f"{where} rule {decision.rule}" if decision.rule is not None else None


@dataclass(frozen=True)
class _Guarding:
    """A guarded MCP request: its guard, who asks, and the requests whose answers it judges."""

    guard: Guard
    exchange: Exchange
    answers: tuple[dict[str, Any], ...]


def _guard_unavailable(status: int, request_id: str | int | None, cause: GuardUnavailable) -> Denied:
    log.warning("mcp guard unavailable, refused (%d): %s", status, cause)
    body = jsonrpc_error(request_id, GUARD_UNAVAILABLE, "mcp guard unavailable")
    return Denied(status, body, f"mcp guard unavailable: {cause}", GUARD_RULE)


def _guard_refused(status: int, request_id: str | int | None, what: str, verdict: Verdict) -> Denied:
    text = f"{what} refused by mcp-guard rule {verdict.rule}"
    body = jsonrpc_error(request_id, FORBIDDEN, text)
    return Denied(status, body, f"mcp guard: {verdict.reason}", f"{GUARD_RULE}/{verdict.rule}")


class WaypointApp:
    def __init__(
        self,
        gateway: str,
        config: Callable[[], WaypointConfig],
        authorization_policies: Callable[[], list[AuthorizationPolicy]],
        ingress: Ingress,
        topology: Topology,
        pool: httpcore.AsyncConnectionPool,
        log_: WaypointLog,
        metrics: WaypointMetrics,
        tracer: trace.Tracer,
        body_timeout: float = BODY_TIMEOUT,
        guard_timeout: float = GUARD_TIMEOUT,
    ) -> None:
        self.gateway = gateway
        self.config = config
        self.authorization_policies = authorization_policies
        self.ingress = ingress
        self.topology = topology
        self.pool = pool
        self.log = log_
        self.metrics = metrics
        self.tracer = tracer
        self.body_timeout = body_timeout
        self.guard = GuardClient(pool, tracer, guard_timeout)  # through the mesh, as backends are

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        caller = self.ingress.caller(scope)
        if caller is None or caller.identity is None:  # not through a live mTLS tunnel: nobody we can name
            await self._refuse_unidentified(scope, send, caller)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        context = extract(headers) if "traceparent" in headers else extract(caller.hbone_headers)
        # The tunnel's own trace (the caller's ztunnel span) stays a separate trace: link it.
        tunnel = trace.get_current_span(extract(caller.hbone_headers)).get_span_context()
        links = [trace.Link(tunnel)] if "traceparent" in headers and tunnel.is_valid else []
        attributes = {
            "src.identity": str(caller.identity),
            "http.method": scope["method"],
            "url.path": scope["path"],
        }
        with self.tracer.start_as_current_span(
            f"waypoint {scope['method']} {scope['path']}",
            context=context,
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=links,
        ) as span:
            record = RequestRecord(
                gateway=self.gateway,
                src_identity=str(caller.identity) if caller.identity else None,
                src_addr=caller.peer_addr,
                http_method=scope["method"],
                path=scope["path"],
                trace_id=format(span.get_span_context().trace_id, "032x"),
            )
            started = time.perf_counter()
            try:
                await self._serve(scope, receive, send, caller, headers, record)
            except Denied as denied:
                record.decision, record.reason, record.rule, record.status = (
                    "deny",
                    denied.reason,
                    denied.rule,
                    denied.status,
                )
                span.set_status(Status(StatusCode.ERROR, denied.reason))
                self.metrics.denied.labels(
                    self.gateway,
                    record.route or "none",
                    denied.reason.split(":")[0],
                    record.src_identity or "none",
                ).inc()
                await _respond(send, denied.status, denied.body, close=denied.close)
            except ClientGone as gone:  # nobody to answer: on record, nothing forwarded or left running
                log.info("%s %s: %s", scope["method"], scope["path"], gone)
                record.decision, record.reason, record.rule, record.status = ERROR, str(gone), None, 499
                span.set_status(Status(StatusCode.ERROR, str(gone)))
                self.metrics.errors.labels(
                    self.gateway, record.route or "none", record.backend or "none", "client", "ClientGone"
                ).inc()
            except Exception as exc:  # fail closed, and say so: an error, not a policy decision
                log.exception("waypoint error")
                where = "upstream" if isinstance(exc, UPSTREAM_ERRORS) else "internal"
                record.decision, record.reason, record.rule, record.status = (
                    ERROR,
                    f"{where} error: {exc}",
                    None,  # no rule refused this request: whatever was allowed before the failure
                    502,
                )
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                self.metrics.errors.labels(
                    self.gateway, record.route or "none", record.backend or "none", where, type(exc).__name__
                ).inc()
                await _respond(send, 502, jsonrpc_error(None, -32603, "upstream error"))
            record.duration_ms = (time.perf_counter() - started) * 1000
            span.set_attribute("http.response.status_code", record.status)
            route = record.route or "none"
            self.metrics.requests.labels(
                self.gateway, route, record.backend or "none", scope["method"], str(record.status)
            ).inc()
            self.metrics.duration.labels(self.gateway, route).observe(record.duration_ms / 1000)
            self.log.write(record)

    def handshake_refused(self, peer: tuple[str, int] | None, reason: str) -> None:
        """The HBONE listener's hook for a failed mTLS handshake: counted and logged."""
        self.metrics.handshake_errors.labels(self.gateway, handshake_reason(reason)).inc()
        self.log.handshake_refused(peer, reason)

    async def _refuse_unidentified(self, scope: Scope, send: Send, caller: Caller | None) -> None:
        """403 before anything else is read or judged; logged and counted like any other deny."""
        record = RequestRecord(
            gateway=self.gateway,
            src_identity=None,
            src_addr=caller.peer_addr if caller else "?",
            http_method=scope["method"],
            path=scope["path"],
            decision="deny",
            reason=NO_IDENTITY,
            status=403,
        )
        log.warning("refused %s %s: %s", scope["method"], scope["path"], NO_IDENTITY)
        self.metrics.denied.labels(self.gateway, "none", NO_IDENTITY, "none").inc()
        self.metrics.requests.labels(self.gateway, "none", "none", scope["method"], "403").inc()
        await _respond(send, 403, jsonrpc_error(None, FORBIDDEN, NO_IDENTITY))
        self.log.write(record)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: Caller,
        headers: dict[str, str],
        record: RequestRecord,
    ) -> None:
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await _read_body(receive)
        except TimeoutError:
            reason = f"request body timeout: not complete within {self.body_timeout:g}s"
            body = jsonrpc_error(None, -32600, "request body timeout")
            raise Denied(408, body, reason, close=True) from None
        if len(body) > MAX_BODY:
            raise Denied(413, jsonrpc_error(None, -32600, "request body too large"), "body too large")
        request = RequestInfo(
            method=scope["method"], path=scope["path"], host=headers.get("host", ""), headers=headers
        )
        self._istio_authz(caller, request)
        source = _identity(caller.identity)
        match, backend = self._route(caller, scope, request)
        record.route = match.route if match else f"waypoint/{backend.host}"
        record.backend = backend.ref
        list_method: str | None = None
        llm: LlmRequest | None = None
        guarding: _Guarding | None = None
        if match is not None:
            self._limit(match)
            if match.http_authorization is not None:
                decision = match.http_authorization.decide(source, request)
                if not decision.allowed:
                    raise Denied(
                        403,
                        jsonrpc_error(None, FORBIDDEN, "forbidden"),
                        decision.reason,
                        _rule("traffic", decision),
                    )
                record.rule = _rule("traffic", decision)
            if backend.kind == "mcp":
                list_method, parsed = self._judge_mcp(match, source, request, scope, headers, body, record)
                if match.guard is not None:
                    guarding = await self._guard_requests(match.guard, backend, parsed, record)
            elif backend.llm is not None:
                llm = self._prepare_llm(backend.llm, body, record)
                body = llm.body
        await _unless_gone(
            receive,
            send,
            lambda sending: self._forward(
                scope,
                sending,
                backend,
                match,
                body,
                headers,
                record,
                source,
                request,
                list_method,
                llm,
                guarding,
            ),
        )

    def _prepare_llm(self, provider: LlmProvider, body: bytes, record: RequestRecord) -> LlmRequest:
        try:
            llm = prepare_request(body, provider)
        except LlmRefused as refused:
            raise Denied(refused.status, refused.body(), f"llm refused: {refused.message}") from None
        fields = log_fields(provider, llm.model, None)
        record.extra.update(fields)
        trace.get_current_span().set_attributes(fields)
        return llm

    def _record_usage(
        self, provider: LlmProvider, llm: LlmRequest, content_type: str, raw: bytes, record: RequestRecord
    ) -> dict[str, Any]:
        """The answer's model and token counts into the log line and the token histogram."""
        fields = log_fields(provider, llm.model, read_usage(content_type, raw))
        record.extra.update(fields)
        for kind, key in (("input", "gen_ai.usage.input_tokens"), ("output", "gen_ai.usage.output_tokens")):
            if fields[key] is not None:
                self.metrics.tokens.labels(
                    kind,
                    fields["gen_ai.operation.name"],
                    provider.provider,
                    llm.model,
                    fields["gen_ai.response.model"] or "unknown",
                    self.gateway,
                    record.route or "none",
                    record.src_identity or "none",
                ).observe(fields[key])
        return {k: v for k, v in fields.items() if v is not None}

    def _istio_authz(self, caller: Caller, request: RequestInfo) -> None:
        """Istio AuthorizationPolicies that target this waypoint, with their L7 fields."""
        http = HttpRequest(
            source=caller.identity,
            source_ip=caller.peer_addr.rsplit(":", 1)[0],
            destination_port=caller.authority_port,
            host=request.host,
            method=request.method,
            path=request.path,
            headers=request.headers,
        )
        decision = authorize_request(self.authorization_policies(), http)
        if not decision.allowed:
            raise Denied(
                403, jsonrpc_error(None, FORBIDDEN, "RBAC: access denied"), decision.reason, decision.policy
            )

    def _route(self, caller: Caller, scope: Scope, request: RequestInfo) -> tuple[RouteMatch | None, Backend]:
        if caller.authority_host != self.ingress.pod.ip:
            # Sent here by ztunnel for a Service bound to this waypoint: on to that Service.
            backend = Backend(
                "service", caller.authority_host, caller.authority_host, caller.authority_port, None
            )
            return None, backend
        match = self.config().match(scope["path"], scope["method"], request.host)
        if match is None:
            raise Denied(404, jsonrpc_error(None, -32601, "no route"), f"no route for {scope['path']}")
        return match, match.backend

    def _limit(self, match: RouteMatch) -> None:
        if match.rate_limit is not None and not match.rate_limit.try_acquire():
            body = jsonrpc_error(None, -32000, "rate limit exceeded")
            raise Denied(429, body, RATE_LIMITED, f"{match.route} local rate limit")

    def _judge_mcp(
        self,
        match: RouteMatch,
        source: Identity | None,
        request: RequestInfo,
        scope: Scope,
        headers: dict[str, str],
        body: bytes,
        record: RequestRecord,
    ) -> tuple[str | None, McpRequest]:
        """Every message the policy judges must be allowed; returns the list method to filter, if any,
        and the request as parsed.

        A request method agentgateway does not serve is refused whatever the policy
        (agentgateway answers it "unsupported method", mcp/session.rs), so nothing reaches the
        server unjudged.
        """
        try:
            parsed = parse_request(scope["method"], headers, body, max_body=MAX_BODY)
        except McpRefused as refused:
            raise Denied(refused.status, refused.body(), f"mcp refused: {refused.message}") from None
        policy = match.mcp_authorization
        listing = None
        for message in parsed.messages:
            record.mcp_method = message.method
            record.mcp_tool = message.tool_name
            principal = record.src_identity or "none"
            if not message.agentgateway_serves:
                self.metrics.mcp.labels(
                    self.gateway, match.route, message.method or "-", "-", "deny", principal
                ).inc()
                raise Denied(
                    400,
                    jsonrpc_error(message.id, METHOD_NOT_FOUND, f"unsupported method: {message.method}"),
                    f"mcp refused: unsupported method {message.method!r}"
                    " (agentgateway serves no such MCP request)",
                )
            if message.method in LISTS:
                listing = message.method
            if policy is None or message.method is None or not policy.judges(message.method):
                self.metrics.mcp.labels(
                    self.gateway, match.route, message.method or "-", "-", "allow", principal
                ).inc()
                continue
            decisions = [(info, policy.decide(source, request, info)) for info in _judged(message)]
            denial = next(((i, d) for i, d in decisions if not d.allowed), None)
            verdict = "allow" if denial is None else "deny"
            self.metrics.mcp.labels(
                self.gateway, match.route, message.method, message.tool_name or "-", verdict, principal
            ).inc()
            if denial is not None:
                info, decision = denial
                what = f"{message.method} {_target(message) or info.resource_uri or ''}".strip()
                text = f"{what} is not allowed for {record.src_identity}"
                reason = f"mcp authorization: {decision.reason}"
                raise Denied(
                    403,
                    jsonrpc_error(message.id, FORBIDDEN, text),
                    reason,
                    _rule(match.backend.ref, decision),
                )
            if decisions:
                record.rule = _rule(match.backend.ref, decisions[-1][1])
        return listing, parsed

    async def _guard_requests(
        self, guard: Guard, backend: Backend, parsed: McpRequest, record: RequestRecord
    ) -> _Guarding:
        """Each request message the guard judges (GUARDED_REQUESTS) must pass it, in order."""
        exchange = Exchange(
            backend.ref.rsplit("/", 1)[-1], record.src_identity or "", parsed.session_id or ""
        )
        requests = [m for m in parsed.messages if m.kind == "request"]
        for message in requests:
            if message.method not in GUARDED_REQUESTS:
                continue
            try:
                verdict = await self.guard.judge_request(guard, exchange, request_object(message))
            except GuardUnavailable as unavailable:
                raise _guard_unavailable(503, message.id, unavailable) from None
            if verdict.action != "pass":
                what = f"{message.method} {_target(message)}".strip()
                raise _guard_refused(403, message.id, what, verdict)
            record.extra["mcp_guard.request"] = "pass"
        answers = tuple(request_object(m) for m in requests if m.method in GUARDED_ANSWERS)
        return _Guarding(guard, exchange, answers)

    async def _guard_answer(
        self, guarding: _Guarding, content_type: str, raw: bytes, record: RequestRecord
    ) -> bytes:
        """The answer once the guard judged the response to each guarded request in it."""
        try:
            answer = read_answer("guarded", content_type, raw)
        except ValueError as exc:  # nothing the guard could be shown: nothing returned
            cause = GuardUnavailable(f"the backend's answer cannot be judged: {exc}")
            raise _guard_unavailable(502, None, cause) from None
        for request in guarding.answers:
            index = answer.response_to(request["id"])
            if index is None:
                cause = GuardUnavailable(f"the backend's answer has no response to request {request['id']!r}")
                raise _guard_unavailable(502, request["id"], cause)
            try:
                verdict = await self.guard.judge_response(
                    guarding.guard, guarding.exchange, request, answer.messages[index]
                )
            except GuardUnavailable as unavailable:
                raise _guard_unavailable(502, request["id"], unavailable) from None
            if verdict.action == "reject":
                what = f"{request['method']} answer"
                raise _guard_refused(502, request["id"], what, verdict)
            record.extra["mcp_guard.response"] = (
                verdict.action
                if verdict.action == "pass"
                else f"{verdict.action} {GUARD_RULE}/{verdict.rule}"
            )
            if verdict.action == "mask":
                log.info(
                    "mcp guard masked a %s answer: rule %s: %s",
                    request["method"],
                    verdict.rule,
                    verdict.reason,
                )
                answer.replace(index, verdict.response)
        return answer.render()

    async def _forward(
        self,
        scope: Scope,
        send: Send,
        backend: Backend,
        match: RouteMatch | None,
        body: bytes,
        headers: dict[str, str],
        record: RequestRecord,
        source: Identity | None,
        request: RequestInfo,
        list_method: str | None,
        llm: LlmRequest | None = None,
        guarding: _Guarding | None = None,
    ) -> None:
        server_span = trace.get_current_span()
        path = match.upstream_path if match else scope["path"]
        query = scope.get("query_string", b"")
        url = f"http://{backend.host}:{backend.port}{path}" + (f"?{query.decode('latin-1')}" if query else "")
        upstream_headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        upstream_headers.append((b"host", f"{backend.host}:{backend.port}".encode()))
        if body:
            upstream_headers.append((b"content-length", str(len(body)).encode()))
        with self.tracer.start_as_current_span(
            "waypoint upstream", kind=SpanKind.CLIENT, attributes={"url.full": url}
        ):
            upstream_headers += [(k.encode(), v.encode()) for k, v in inject().items()]
            async with self.pool.stream(
                scope["method"], url, headers=upstream_headers, content=body
            ) as response:
                peer = response.extensions.get("network_stream")
                identity = peer.get_extra_info("peer_identity") if peer is not None else None
                record.dst_identity = str(identity) if identity else None
                record.status = response.status
                out_headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
                content_type = next(
                    (v.decode() for k, v in response.headers if k.lower() == b"content-type"), ""
                )
                policy = match.mcp_authorization if match is not None and list_method is not None else None
                judged = guarding if guarding is not None and guarding.answers else None
                if judged is not None and response.status >= 400:
                    await _send_withheld(send, judged, response.status, out_headers, record)
                    return
                if judged is not None or policy is not None:
                    if judged is not None:  # read whole (bounded), then judged by the guard
                        raw = await _read_answer(response, MAX_GUARDED_ANSWER)
                        raw = await self._guard_answer(judged, content_type, raw, record)
                    else:
                        raw = await response.aread()
                    filtered = raw
                    if policy is not None and list_method is not None:
                        kind = LISTS[list_method].kind
                        filtered = filter_list(
                            list_method,
                            content_type,
                            raw,
                            lambda name: policy.decide(source, request, _listed_info(kind, name)).allowed,
                        )
                    out_headers.append((b"content-length", str(len(filtered)).encode()))
                    await send(
                        {"type": "http.response.start", "status": response.status, "headers": out_headers}
                    )
                    await send({"type": "http.response.body", "body": filtered})
                    return
                await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
                kept: list[bytes] = []
                size = 0
                async for chunk in response.aiter_stream():
                    if llm is not None and size + len(chunk) <= MAX_LLM_RESPONSE:
                        kept.append(chunk)
                        size += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        if llm is not None and backend.llm is not None and response.status < 400:
            server_span.set_attributes(
                self._record_usage(backend.llm, llm, content_type, b"".join(kept), record)
            )


async def _send_withheld(
    send: Send, guarding: _Guarding, status: int, headers: list[tuple[bytes, bytes]], record: RequestRecord
) -> None:
    """A guarded request the backend refused (no such session, a bad request): the client gets
    the status, which its transport acts on, but not the body, which is no answer the guard
    could judge; a JSON-RPC error naming the status stands in for it."""
    body = jsonrpc_error(guarding.answers[0]["id"], -32603, f"the MCP backend answered HTTP {status}")
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    kept += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    record.extra["mcp_guard.response"] = f"withheld: HTTP {status}"
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})


async def _read_answer(response: httpcore.Response, limit: int) -> bytes:
    """A backend's whole answer for the guard, refused (nothing returned) beyond `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_stream():
        size += len(chunk)
        if size > limit:
            cause = GuardUnavailable(f"the backend's answer is larger than {limit} bytes")
            raise _guard_unavailable(502, None, cause)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client went away before its request's body ended")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY + 1:
            chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _unless_gone(receive: Receive, send: Send, forward: Callable[[Send], Awaitable[None]]) -> None:
    """Run `forward(send)`; if the client disconnects before the answer is complete, cancel it.

    Cancelling closes the upstream request, so a backend streaming to a caller that left
    (an SSE stream) is not kept busy. Once the request body is read, `receive` returns
    only when the client disconnects or the response is complete: the flag tells which.
    `forward` runs in this task, so nothing is awaited between the answer's last byte and
    the caller's log line.
    """
    task = asyncio.current_task()
    assert task is not None
    complete = gone = False

    async def sending(message: dict[str, Any]) -> None:
        nonlocal complete
        if message["type"] == "http.response.body" and not message.get("more_body"):
            complete = True
        await send(message)

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    def on_disconnected(watch: asyncio.Future[None]) -> None:
        nonlocal gone
        if not (watch.cancelled() or watch.exception() is not None or complete):
            gone = True
            task.cancel()

    watch = asyncio.ensure_future(disconnected())
    watch.add_done_callback(on_disconnected)
    try:
        await forward(sending)
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:  # our cancel, not the server's: the client left
            raise ClientGone("the client went away while its answer was on the way") from None
        raise
    finally:
        watch.remove_done_callback(on_disconnected)
        watch.cancel()
