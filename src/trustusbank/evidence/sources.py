"""What each of the cluster's log and span files means, one parser per kind of file.

Each parser takes one original line (already JSON-decoded) and returns the
fields an auditor queries by; the line itself is kept verbatim by the caller.
Field names are the writers' own: ztunnel's access log (`src.identity`, `error`,
...), the waypoint's request log, the agents' AccessPolicy log, OpenTelemetry
spans with the GenAI attributes, and the supervisor's runtime events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from trustusbank.agents.a2a import spans as genai
from trustusbank.evidence.context import Cluster, Pod, normalize_identity

Fields = dict[str, Any]
Parser = Callable[[dict[str, Any], Cluster], Fields]

DENIED_BY = re.compile(r"explicitly denied by: (?P<policy>\S+)")
NO_ALLOW_MATCHED = "(no ALLOW policy matched)"
STRICT_MTLS = "PeerAuthentication STRICT"
MTLS_HANDSHAKE = "mTLS handshake"  # the "policy" of a refused handshake: the mesh's own mutual TLS
HANDSHAKE_FAILED = "tls handshake failed"
LEGACY_ERROR = "internal error:"  # how a waypoint once logged a failed request, as a "deny"
PII_FLAG = "pii-in-arguments"
# Keys that make a mapping personal data; one strong key or two weak ones are enough.
STRONG_PII = frozenset({"email", "phone", "date_of_birth", "ni_number", "national_insurance_number", "dob"})
WEAK_PII = frozenset({"name", "address", "kyc_status", "customer_id"})


def trace_id(value: object) -> str | None:
    """A W3C trace id as 32 lowercase hex digits (spans write `0x…`, logs write bare hex)."""
    if not isinstance(value, str):
        return None
    text = value.lower().removeprefix("0x")
    return text if re.fullmatch(r"[0-9a-f]{32}", text) and text != "0" * 32 else None


def compact(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(namespace: object, workload: object, identity: object) -> str:
    if workload:
        return f"{namespace}/{workload}" if namespace else str(workload)
    return str(identity or "an unidentified peer")


def _pod_fields(pod: Pod | None) -> Fields:
    if pod is None:
        return {}
    return {"workload": pod.deployment, "namespace": pod.namespace, "image": pod.image or None}


# -- ztunnel access log -------------------------------------------------------
def ztunnel(data: dict[str, Any], cluster: Cluster) -> Fields:
    error = str(data.get("error") or "")
    outbound = data.get("direction") == "outbound"
    policy = None
    # Refused at connect ("policy rejection") or cut when a policy update no longer allows it.
    if "policy rejection" in error or "policy change" in error:
        kind = "l4-deny"
        found = DENIED_BY.search(error)
        policy = found["policy"] if found else NO_ALLOW_MATCHED
        verdict = f"denied by {policy}" if found else "denied: allow policies exist, none allowed"
    elif "plaintext refused" in error:
        kind, policy, verdict = "l4-deny", STRICT_MTLS, "plaintext refused (STRICT mTLS)"
    elif error.startswith(HANDSHAKE_FAILED):
        kind, policy, verdict = "tls-deny", MTLS_HANDSHAKE, f"refused: {error}"
    elif outbound and "401" in error:
        kind, verdict = "l4-refused", "refused by the destination's policy (HBONE 401)"
    elif error:
        kind, verdict = "l4-error", f"failed: {error}"
    else:
        kind, verdict = "l4-allow", f"connection complete ({data.get('bytes_sent', 0)} bytes sent)"
    src_pod = cluster.pod(data.get("src.namespace"), data.get("src.workload")) or cluster.pod_at(
        data.get("src.addr")
    )
    fields: Fields = {
        "workload": data.get("src.workload"),
        "namespace": data.get("src.namespace"),
        **_pod_fields(src_pod),
    }
    port = str(data.get("dst.addr", "")).rpartition(":")[2]
    src = _who(data.get("src.namespace"), data.get("src.workload"), data.get("src.identity"))
    dst = _who(data.get("dst.namespace"), data.get("dst.workload"), data.get("dst.identity"))
    side = "source" if outbound else "destination"
    return {
        **fields,
        "kind": kind,
        "src_identity": normalize_identity(data.get("src.identity")) or cluster.identity(src_pod),
        "dst_identity": normalize_identity(data.get("dst.identity")),
        "policy": policy,
        "trace_id": trace_id(data.get("trace_id")),
        "summary": f"{src} → {dst}:{port} {verdict} (seen at the {side})",
    }


# -- waypoint request log -----------------------------------------------------
def waypoint(data: dict[str, Any], cluster: Cluster) -> Fields:
    if str(data.get("reason") or "").startswith(HANDSHAKE_FAILED):
        return _waypoint_handshake(data, cluster)
    decision = str(data.get("decision") or "unknown")
    if decision == "deny" and str(data.get("reason") or "").startswith(LEGACY_ERROR):
        decision = "error"  # an older waypoint logged its failures as denies: a failure is no deny
    method = data.get("mcp.method")
    src_identity = normalize_identity(data.get("src.identity"))
    caller = cluster.pod_at(data.get("src.addr")) or cluster.pod_of_identity(src_identity)
    what = f"{method} {data.get('mcp.tool')}" if data.get("mcp.tool") else (method or data.get("http.method"))
    because = data.get("reason") if decision == "error" else data.get("rule") or data.get("reason")
    summary = (
        f"{_who(caller.namespace if caller else None, caller.deployment if caller else None, src_identity)} "
        f"{what} {data.get('http.path', '')} → {data.get('backend') or '-'}: {decision} "
        f"({data.get('http.status')})" + (f" [{because}]" if because else "")
    )
    return {
        **_pod_fields(caller),
        "kind": f"{'mcp' if method else 'http'}-{decision}",
        "src_identity": src_identity,
        "dst_identity": normalize_identity(data.get("dst.identity")),
        # A failure was decided by no rule (an older waypoint still named the last one that allowed).
        "policy": None
        if decision == "error"
        else data.get("rule") or (data.get("reason") if decision == "deny" else None),
        "tool": data.get("mcp.tool"),
        "trace_id": trace_id(data.get("trace_id")),
        "summary": summary,
    }


def _waypoint_handshake(data: dict[str, Any], cluster: Cluster) -> Fields:
    """A peer the waypoint refused at mutual TLS: no identity proven, only its address."""
    peer = cluster.pod_at(data.get("src.addr"))
    who = _who(peer.namespace if peer else None, peer.deployment if peer else None, data.get("src.addr"))
    return {
        **_pod_fields(peer),
        "kind": "tls-deny",
        "src_identity": None,
        "policy": MTLS_HANDSHAKE,
        "summary": f"{who} → waypoint {data.get('gateway') or '?'}: refused: {data.get('reason')}",
    }


# -- agents' AccessPolicy log -------------------------------------------------
def agent_log(data: dict[str, Any], cluster: Cluster) -> Fields:
    src_identity = normalize_identity(data.get("source.principal"))
    caller = cluster.pod_at(data.get("source.addr")) or cluster.pod_of_identity(src_identity)
    agent = cluster.pod(data.get("namespace"), data.get("agent"))
    decision = str(data.get("decision") or "deny")
    return {
        **_pod_fields(caller),
        "kind": f"a2a-{decision}",
        "src_identity": src_identity,
        "dst_identity": cluster.identity(agent),
        "policy": data.get("policy"),
        "trace_id": trace_id(data.get("trace_id")),
        "summary": str(data.get("message") or f"AccessPolicy {decision} for {src_identity}"),
    }


def guard(data: dict[str, Any], cluster: Cluster) -> Fields:
    """The MCP guard's own line: a tool-definition drift it masked, a quarantined result, a refused
    argument. Its refusals are also the waypoint's denies (rule mcp-guard/<rule>); this line keeps
    what only the guard saw: the pinned and the served definitions' hashes, the quarantined text."""
    src_identity = normalize_identity(data.get("caller"))
    caller = cluster.pod_of_identity(src_identity)
    action, rule = str(data.get("action") or "unknown"), str(data.get("rule") or "unknown")
    what = f"{data.get('backend') or '-'}/{data.get('tool') or '-'}"
    summary = (
        f"mcp-guard {action} ({rule}) {what} for "
        f"{_who(caller.namespace if caller else None, caller.deployment if caller else None, src_identity)}: "
        f"{data.get('reason') or ''}"
    )
    return {
        **_pod_fields(caller),
        "kind": "tool-drift" if data.get("drift") else f"guard-{action}",
        "src_identity": src_identity,
        "policy": f"mcp-guard/{rule}",
        "tool": data.get("tool"),
        "summary": summary.strip(),
    }


# -- runtime events (supervisor, act scripts, apply/delete, alerts) ----------
_EVENT_SOURCES = (("image", "image"), ("manifest", "policy"), ("policy", "policy"), ("alert", "alert"))


def _event_source(event: str) -> str:
    return next((source for prefix, source in _EVENT_SOURCES if event.startswith(prefix)), "runtime")


def _event_pod(data: dict[str, Any], cluster: Cluster) -> Pod | None:
    """The pod an event is about: `process`, `pod` or `deployment` as `<ns>/<name>`, or by fields."""
    for key in ("process", "pod", "deployment"):
        value = data.get(key)
        if isinstance(value, str) and "/" in value:
            pod = cluster.pod(*value.split("/", 1))
            if pod is not None:
                return pod
    named = data.get("pod") or data.get("deployment")
    return cluster.pod(data.get("namespace"), named) if isinstance(named, str) else None


def _short(digest: object) -> str:
    return f"{digest}"[:19] if digest else "none"


def _event_summary(event: str, data: dict[str, Any]) -> str:
    by = f" by {data['actor']}" if data.get("actor") else ""
    if event.startswith("image") and data.get("tag"):
        why = f": {data['reason']}" if data.get("reason") else ""
        build = f"{data.get('workload')} build {data.get('build')}, signer {data.get('signer') or 'none'}"
        digests = f"{_short(data.get('old_digest'))} → {_short(data.get('new_digest'))}"
        return f"{event}: {data['tag']} {digests} ({build}){by}{why}"
    objects = data.get("objects")
    if isinstance(objects, list):
        names = ", ".join(
            f"{o.get('kind')} {o.get('namespace')}/{o.get('name')}" for o in objects if isinstance(o, dict)
        )
        return f"{event} {data.get('file', '')}{by}: {names}"
    detail = ", ".join(
        f"{k}={compact(v, 80)}" for k, v in data.items() if k not in ("time", "event") and v not in (None, "")
    )
    return f"{event}: {detail}" if detail else event


def _policies(objects: Any) -> str | None:
    if not isinstance(objects, list):
        return None
    refs = [f"{o.get('namespace')}/{o.get('name')}" for o in objects if isinstance(o, dict)]
    return ", ".join(refs) or None


def runtime_event(data: dict[str, Any], cluster: Cluster) -> Fields:
    event = str(data.get("event") or "event")
    source = _event_source(event)
    pod = None if source == "image" else _event_pod(data, cluster)
    fields: Fields = {
        "source": source,
        "kind": event,
        **_pod_fields(pod),
        "src_identity": cluster.identity(pod),
        "summary": compact(_event_summary(event, data), 400),
        "trace_id": trace_id(data.get("trace_id")),
    }
    if source == "image":
        fields["workload"] = data.get("workload")
    image, digest = data.get("image") or data.get("tag"), data.get("digest") or data.get("new_digest")
    for key, value in (("image", image), ("digest", digest), ("tool", data.get("tool"))):
        if isinstance(value, str) and value:
            fields[key] = value
    policy = data.get("policy") if isinstance(data.get("policy"), str) else _policies(data.get("objects"))
    if policy:
        fields["policy"] = policy
    for key in ("src_identity", "identity", "source_principal", "spiffe_id", "offender"):
        if isinstance(data.get(key), str):
            fields["src_identity"] = normalize_identity(data[key])
    if isinstance(data.get("dst_identity"), str):
        fields["dst_identity"] = normalize_identity(data["dst_identity"])
    return fields


# -- the alert evaluator's journal (logs/alerts.jsonl) --------------------------
ALERT_KINDS = {"firing": "alert-fired", "resolved": "alert-resolved", "notified": "alert-notified"}


def alert(data: dict[str, Any], cluster: Cluster) -> Fields:
    """A rule's transition (firing, resolved) or a notification (mailed, undelivered, failed)."""
    event = str(data.get("event") or data.get("state") or "event")
    labels: dict[str, Any] = data["labels"] if isinstance(data.get("labels"), dict) else {}
    offender = normalize_identity(data.get("offender") or labels.get("source_principal"))
    pod = cluster.pod_of_identity(offender)
    name = data.get("alertname") or labels.get("alertname")
    annotations: dict[str, Any] = data["annotations"] if isinstance(data.get("annotations"), dict) else {}
    detail = annotations.get("summary") or data.get("subject") or data.get("error") or ""
    return {
        "kind": ALERT_KINDS.get(event, f"alert-{event}"),
        **_pod_fields(pod),
        "src_identity": offender,
        "policy": labels.get("policy") if isinstance(labels.get("policy"), str) else None,
        "summary": compact(f"{name} {event}" + (f": {detail}" if detail else ""), 400),
    }


# -- agent spans --------------------------------------------------------------
def personal_data(arguments: Any) -> dict[str, list[str]]:
    """Argument paths whose value is personal data (a profile-like mapping), with its field names."""
    found: dict[str, list[str]] = {}

    def visit(value: Any, path: str) -> None:
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                value = json.loads(value)
            except ValueError:
                return
        if isinstance(value, dict):
            keys = {str(k).lower() for k in value}
            if keys & STRONG_PII or (len(keys & WEAK_PII) >= 2 and path):
                found[path or "(arguments)"] = sorted(keys & (STRONG_PII | WEAK_PII))
                return
            for key, item in value.items():
                visit(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, f"{path}[{i}]")

    visit(arguments, "")
    return found


def agent_span(data: dict[str, Any], cluster: Cluster) -> Fields:
    attrs = data.get("attributes") or {}
    resource = (data.get("resource") or {}).get("attributes") or {}
    agent = cluster.pod(resource.get("service.namespace"), resource.get("service.name"))
    name = str(resource.get("service.name") or "agent")
    operation = attrs.get(genai.OPERATION)
    flags: list[str] = []
    if (data.get("status") or {}).get("status_code") == "ERROR":
        flags.append("error")
    fields: Fields = {
        "workload": resource.get("service.name"),
        "namespace": resource.get("service.namespace"),
        **_pod_fields(agent),
        "src_identity": cluster.identity(agent),
        "trace_id": trace_id((data.get("context") or {}).get("trace_id")),
    }
    if operation == genai.EXECUTE_TOOL:
        tool = attrs.get(genai.TOOL_NAME)
        server = attrs.get(genai.MCP_SERVER)
        target = cluster.pod(None, server) if server else cluster.pod(None, tool)
        try:
            arguments = json.loads(attrs.get(genai.TOOL_ARGUMENTS) or "{}")
        except ValueError:
            arguments = attrs.get(genai.TOOL_ARGUMENTS)
        leaked = personal_data(arguments)
        if leaked:
            flags.append(PII_FLAG)
            shown = "; arguments carry personal data: " + ", ".join(
                f"{path}({', '.join(keys)})" for path, keys in leaked.items()
            )
        else:
            shown = " " + compact(arguments)
        if attrs.get(genai.TOOL_IS_ERROR):
            flags.append("tool-error")
        at = f" @ {server}" if server else ""
        fields |= {
            "kind": "tool-call",
            "tool": tool,
            "dst_identity": cluster.identity(target),
            "summary": f"{name} called {tool}{at}{shown}",
        }
    elif operation == genai.CHAT:
        model = attrs.get(genai.REQUEST_MODEL)
        usage = f"{attrs.get(genai.INPUT_TOKENS, '?')} in / {attrs.get(genai.OUTPUT_TOKENS, '?')} out tokens"
        fields |= {"kind": "model-call", "summary": f"{name} asked model {model}: {usage}"}
    elif operation == genai.INVOKE_AGENT:
        conversation = attrs.get(genai.CONVERSATION_ID)
        fields |= {"kind": "agent-invoke", "summary": f"{name} invoked (conversation {conversation})"}
    else:
        fields |= {"kind": "span", "summary": f"{name}: {data.get('name')}"}
    fields["flags"] = ",".join(flags) or None
    return fields


def span_time(data: dict[str, Any]) -> Any:
    return data.get("start_time")
