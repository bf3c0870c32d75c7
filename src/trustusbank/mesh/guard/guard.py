"""The guard's rules, in order, for each message the waypoint shows it.

Requests (tools/call): `pinned-schema` first (an argument the pinned definition does not
declare is how the rug pull asks for the profile), then `data-flow` (a value read from
another backend in an argument). Responses: `tool-pin` for tools/list, `quarantine` for
tools/call. Everything else passes: the waypoint's own policies judge it. Any exception
while deciding is a reject under the rule `internal-error`, logged: a guard that cannot
judge a message must not let it through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trustusbank.mesh.guard.dataflow import TaintMemory
from trustusbank.mesh.guard.evidence import GuardEvidence
from trustusbank.mesh.guard.pins import ListingCheck, ListingError, PinStore, canonical, sha256
from trustusbank.mesh.guard.quarantine import quarantine_result
from trustusbank.mesh.guard.wire import PASS, Decision, Exchange, GuardRequest, GuardResponse, params

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal-error"
_DRIFT_REASONS = {
    "description": "description changed since it was pinned: the pinned definition is served",
    "schema": "inputSchema changed since it was pinned: the pinned definition is served",
    "new": "tool not in the pinned listing: removed",
}


class McpGuard:
    def __init__(self, pins: PinStore, taint: TaintMemory, evidence: GuardEvidence) -> None:
        self.pins, self.taint, self.evidence = pins, taint, evidence

    def on_request(self, request: GuardRequest) -> Decision:
        return self._judged(request, _tool(request.message), lambda: self._request(request))

    def on_response(self, response: GuardResponse) -> Decision:
        return self._judged(response, _tool(response.request), lambda: self._response(response))

    def _judged(self, exchange: Exchange, tool: str | None, decide: Callable[[], Decision]) -> Decision:
        try:
            decision = decide()
        except Exception as exc:
            log.exception("mcp guard: deciding failed for %s/%s", exchange.backend, tool)
            reason = f"the guard failed while deciding ({type(exc).__name__}): refused"
            decision = Decision("reject", INTERNAL_ERROR, reason)
            self.evidence.record(
                exchange,
                rule=INTERNAL_ERROR,
                action="reject",
                tool=tool,
                reason=reason,
                sha256=None,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
        self.evidence.decided(exchange, decision)
        return decision

    def _reject(
        self, exchange: Exchange, rule: str, tool: str | None, reason: str, offending: str
    ) -> Decision:
        digest = sha256(offending)
        self.evidence.record(
            exchange,
            rule=rule,
            action="reject",
            tool=tool,
            reason=reason,
            sha256=digest,
            length=len(offending),
        )
        return Decision("reject", rule, reason)

    def _request(self, request: GuardRequest) -> Decision:
        if request.message["method"] != "tools/call":
            return PASS
        call = params(request.message)
        tool = call.get("name")
        if not isinstance(tool, str) or not tool:
            return self._reject(
                request, "pinned-schema", None, "tools/call names no tool", canonical(call).decode()
            )
        arguments = call.get("arguments", {})
        if not isinstance(arguments, dict):
            return self._reject(
                request, "pinned-schema", tool, "arguments are not an object", canonical(arguments).decode()
            )
        pinned = self.pins.tool(request.backend, tool)
        if pinned is None:
            reason = f"{request.backend}/{tool} has no pinned definition (never listed through the guard)"
            return self._reject(request, "pinned-schema", tool, reason, tool)
        declared = pinned["inputSchema"].get("properties") or {}
        extra = sorted(set(arguments) - set(declared))
        if extra:
            reason = f"argument(s) {', '.join(extra)} not declared by the pinned inputSchema of {tool}"
            offending = canonical({k: arguments[k] for k in extra}).decode()
            return self._reject(request, "pinned-schema", tool, reason, offending)
        leak = self.taint.leak(request.party, request.backend, arguments)
        if leak is not None:
            reason = f"an argument carries a value this caller read from {leak.source}"
            return self._reject(request, "data-flow", tool, reason, leak.value)
        self.taint.sent(request.party, arguments)
        return PASS

    def _response(self, exchange: GuardResponse) -> Decision:
        response = exchange.response
        if "error" in response:
            return PASS
        method = exchange.request["method"]
        result = response["result"]
        if method == "tools/list":
            if not isinstance(result, dict):
                return self._reject(
                    exchange, "tool-pin", None, "tools/list result is not an object", str(result)
                )
            try:
                check = self.pins.check(exchange.backend, result.get("tools"))
            except ListingError as exc:
                return self._reject(
                    exchange, "tool-pin", None, f"tools/list result cannot be pinned: {exc}", str(result)
                )
            return self._pinned(exchange, check)
        if method == "tools/call":
            tool = _tool(exchange.request) or ""
            if not isinstance(result, dict):
                reason = "tools/call result is not an object: it cannot be judged"
                return self._reject(exchange, "quarantine", tool, reason, str(result))
            return self._quarantined(exchange, tool, result)
        return PASS

    def _pinned(self, exchange: GuardResponse, check: ListingCheck) -> Decision:
        if not check.drifts:
            return PASS
        for drift in check.drifts:
            self.evidence.drifted(exchange.backend, drift.tool)
            self.evidence.record(
                exchange,
                rule="tool-pin",
                action="mask",
                tool=drift.tool,
                reason=_DRIFT_REASONS[drift.kind],
                sha256=drift.seen_sha256,
                drift=drift.kind,
                pinned_sha256=drift.pinned_sha256,
                definition=drift.seen,
            )
        names = ", ".join(f"{d.tool} ({d.kind})" for d in check.drifts)
        result = {**exchange.response["result"], "tools": check.tools}
        return Decision(
            "mask", "tool-pin", f"tool definitions drifted: {names}", {**exchange.response, "result": result}
        )

    def _quarantined(self, exchange: GuardResponse, tool: str, result: Any) -> Decision:
        cleaned, findings = quarantine_result(result, exchange.backend, tool)
        self.taint.read(exchange.party, exchange.backend, cleaned)
        if not findings:
            return PASS
        for finding in findings:
            self.evidence.record(
                exchange,
                rule="quarantine",
                action="mask",
                tool=tool,
                reason=f"instruction-like text ({finding.pattern}) at {finding.where}",
                sha256=finding.sha256,
                length=finding.length,
                where=finding.where,
                pattern=finding.pattern,
                text=finding.text,
            )
        where = ", ".join(f.where for f in findings)
        reason = f"instruction-like text quarantined in {exchange.backend}/{tool} result: {where}"
        return Decision("mask", "quarantine", reason, {**exchange.response, "result": cleaned})


def _tool(message: dict[str, Any]) -> str | None:
    name = params(message).get("name") if message.get("method") == "tools/call" else None
    return name if isinstance(name, str) else None
