"""kagent AccessPolicy at the agent's door: who may send this agent A2A requests.

Every JSON-RPC request is judged before the A2A SDK sees it; the agent card, /healthz
and /metrics stay public (a card says what an agent is, not what it will do for you,
and A2A clients must read it before they can call at all).

Who is calling: the workload, from the peer address the mesh vouches for (`callers`), and,
when the request bears `Authorization: Bearer <ID token>` (the console calling on a
person's behalf, as kagent's UI does), the person that token names, verified against the
sign-in provider's keys (`user_tokens`). A token that does not verify, or one this agent has
no provider's keys for, is a deny, logged with why: never a request judged as if it had none.

The decision, when any AccessPolicy targets the agent (`spec.access_enforced`):
no verified caller identity (neither workload nor person) -> deny; a DENY rule naming the
caller -> deny; otherwise allow only if an ALLOW rule names the caller. Principals match as
Istio's do: exact, "*", or one "*" as prefix or suffix; UserGroup subjects match the verified
token's `groups`. A request without a token carries no end-user identity, so for it a DENY
rule that names groups cannot be checked and denies, and an ALLOW rule's groups allow no one.
Any error while deciding denies. A deny is HTTP 403 with a JSON-RPC error (code -32001, the
same "not allowed by policy" code our waypoint uses), one JSON log line and a metric the
KagentAccessPolicyDeny alert reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trustusbank.agents.a2a.callers import CallerResolver
from trustusbank.agents.a2a.metrics import AgentMetrics
from trustusbank.agents.a2a.user_tokens import Person, TrustedProvider
from trustusbank.env import LOGS_DIR
from trustusbank.manifests.kagent import access
from trustusbank.manifests.kagent.access import principal_matches as principal_matches
from trustusbank.manifests.kagent.spec import AgentSpec
from trustusbank.oidc import TokenRefused
from trustusbank.paths import state_dir
from trustusbank.telemetry.jsonlog import JsonLinesLog

ACCESS_DENIED_CODE = -32001
UNKNOWN_PRINCIPAL = "unknown"
NO_IDENTITY = "caller has no verified workload identity"
EVALUATION_FAILED = "rule evaluation failed"
NO_ALLOW = "no ALLOW rule names the caller"
TOKEN_REFUSED = "the user token does not verify"
NO_PROVIDER = "a user token, and no identity provider's keys to verify it"
USER_TOKEN = "user-token"  # what stands in for a policy when the token itself is refused
_MAX_ID_BODY = 64 * 1024  # how much of a denied request we read to echo its JSON-RPC id

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    principal: str | None
    policy: str  # the AccessPolicy that decided, or what stood in for one
    reason: str
    # The reason with no caller-specific part, for the denial counter's `reason` label and so
    # for the alert's words: never "refused by AccessPolicy identity-required".
    label: str = ""
    person: Person | None = None  # who a verified user token names


def decide(spec: AgentSpec, principal: str | None, person: Person | None = None) -> Decision:
    """The AccessPolicy decision for one caller; never raises (an error is a logged deny).

    `person`, from a verified token, brings its groups; without one, groups are unknown."""
    if not spec.access_enforced:
        return Decision(True, principal, "-", "no AccessPolicy targets this agent", person=person)
    if principal is None and person is None:
        return Decision(False, None, "identity-required", NO_IDENTITY, NO_IDENTITY)
    groups = person.groups if person is not None else ()
    try:
        decided = access.decide(spec.access, True, principal, groups, groups_known=person is not None)
    except Exception as exc:
        log.warning("AccessPolicy evaluation failed for %s, denying: %s", principal, exc)
        return Decision(
            False, principal, "evaluation-error", f"{EVALUATION_FAILED}: {exc}", EVALUATION_FAILED, person
        )
    if decided.allowed:
        policy = decided.policy or "-"
        return Decision(True, principal, policy, "an ALLOW rule names the caller", person=person)
    if decided.policy is not None:
        label = f"denied by {decided.policy}"
        return Decision(False, principal, decided.policy, decided.reason, label, person)
    allow = ",".join(sorted({r.policy for r in spec.access if r.action == "ALLOW"})) or "default-deny"
    return Decision(False, principal, allow, NO_ALLOW, f"{NO_ALLOW} (ALLOW: {allow})", person)


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; "" for an Authorization that is not one
    (judged as a token that does not verify), None when there is no Authorization at all."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def access_log_path(spec: AgentSpec) -> Path:
    """Where this agent's decision log goes: `TRUSTUSBANK_LOGS_DIR`, else the state directory's logs/."""
    configured = LOGS_DIR.read()
    directory = configured if configured is not None else state_dir() / "logs"
    return directory / f"agent-{spec.namespace}-{spec.name}.jsonl"


class AccessGuard:
    def __init__(
        self,
        spec: AgentSpec,
        caller_of: CallerResolver | None,
        metrics: AgentMetrics,
        log_path: Path,
        user_tokens: TrustedProvider | None = None,
    ) -> None:
        self.spec = spec
        self.caller_of = caller_of
        self.metrics = metrics
        self.user_tokens = user_tokens
        self._log_path = log_path
        self._log: JsonLinesLog | None = None

    def judge(self, peer_ip: str, authorization: str | None = None) -> Decision:
        try:
            principal = self.caller_of(peer_ip) if self.caller_of else None
        except Exception as exc:
            log.warning("caller resolution failed for %s, denying: %s", peer_ip, exc)
            principal = None
        token = bearer_token(authorization)
        if token is None:
            return decide(self.spec, principal)
        try:
            if self.user_tokens is None:
                raise TokenRefused(NO_PROVIDER)
            if not token:
                raise TokenRefused("the Authorization header is not a Bearer token")
            person = self.user_tokens.verify(token)
        except TokenRefused as exc:
            return Decision(False, principal, USER_TOKEN, f"{TOKEN_REFUSED}: {exc}", TOKEN_REFUSED)
        return decide(self.spec, principal, person)

    def protect(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint`, answered only for callers the AccessPolicies allow."""

        async def guarded(request: Request) -> Response:
            peer = request.client.host if request.client else ""
            decision = self.judge(peer, request.headers.get("authorization"))
            self.metrics.access_decision(decision.allowed)
            if decision.allowed:
                return await endpoint(request)
            return await self._deny(request, peer, decision)

        return guarded

    def message(self, decision: Decision) -> str:
        person = decision.person
        if person is not None:
            who = f"{person.email} (groups {', '.join(person.groups) or 'none'})"
            if decision.principal:
                who += f" through {decision.principal}"
        else:
            who = decision.principal or "an unidentified caller"
        if decision.policy == USER_TOKEN:
            return f"{decision.reason}: {who} may not call {self.spec.ref}"
        return f"AccessPolicy {decision.policy} denies {who} calling {self.spec.ref}"

    async def _deny(self, request: Request, peer: str, decision: Decision) -> Response:
        principal = decision.principal or UNKNOWN_PRINCIPAL
        self.metrics.access_denied(principal, decision.policy, decision.label)
        request_id, method = await _jsonrpc_head(request)
        text = self.message(decision)
        person = decision.person
        fields: dict[str, Any] = {
            "agent": self.spec.name,
            "namespace": self.spec.namespace,
            "source.principal": principal,
            "source.addr": peer,
            "policy": decision.policy,
            "reason": decision.reason,
            "jsonrpc.method": method,
        }
        if person is not None:
            fields |= {"user.email": person.email, "user.groups": list(person.groups)}
        self._write_log(fields, text)
        data: dict[str, Any] = {"policy": decision.policy, "principal": principal, "reason": decision.reason}
        if person is not None:
            data |= {"user": person.email, "groups": list(person.groups)}
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": ACCESS_DENIED_CODE, "message": text, "data": data},
        }
        return JSONResponse(body, status_code=403)

    def _write_log(self, fields: dict[str, Any], message: str) -> None:
        try:
            if self._log is None:
                self._log = JsonLinesLog(self._log_path, component="kagent-agent")
            self._log.write("warn", "accesspolicy", message, fields)
        except OSError as exc:  # the deny stands; losing its log line must not turn it into a 500
            log.error("cannot write the AccessPolicy log %s: %s", self._log_path, exc)


async def _jsonrpc_head(request: Request) -> tuple[str | int | None, str | None]:
    """The request's JSON-RPC id and method, if its body is small and well-formed enough to tell."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_ID_BODY:
            return None, None
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    request_id = body.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    method = body.get("method")
    return request_id, method if isinstance(method, str) else None
