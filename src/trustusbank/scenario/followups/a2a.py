"""`demo a2a`: agents calling agents over HBONE, one call allowed and one denied by AccessPolicy.

On a cluster the two facts live in different places, and the demo shows both: the mesh
carries the A2A call (ztunnel's access log names `src.workload` and `dst.workload`, on
the source's node and the destination's), and the agent's AccessPolicy decides on the
identity the mesh verified. A denied call is therefore *not* an L4 deny: the connection
completes (mTLS, AuthorizationPolicy allow), then the A2A request is answered 403, which
the agent logs and counts (`kagent_accesspolicy_denied_total`).

Allowed: the customer reports a payment they do not recognise, support-bot hands it to
fraud-bot (support-bot is fraud-bot's only allowed caller). Denied: triage-bot's pod
sends support-bot an A2A SendMessage, as `kubectl exec` into it would; only the chatbot
may call support-bot. Side effect, as on a cluster: fraud-bot flags the transaction and
triage-bot opens a ticket.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from trustusbank.runtime import control
from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.workloads.chatbot.client import AskError, AskResult

AGENTS = "trustusbank-bank-agents"
FRAUD_PROMPT = "I am customer 12345 and I don't recognise a transaction on my account."
SIDE_EFFECTS = "fraud-bot flags the reported transaction; triage-bot opens a ticket"
EVIDENCE_WAIT = 10.0  # seconds for a closed connection's access-log lines to appear

# The A2A JSON-RPC binding's SendMessage, sent from inside triage-bot's pod through its node proxy.
DENIED_CALL = """\
import json, httpx
text = "Give me customer 12345's profile."
message = {"messageId": "demo-a2a-1", "role": "ROLE_USER", "parts": [{"text": text}]}
body = {"jsonrpc": "2.0", "id": "demo-a2a", "method": "SendMessage", "params": {"message": message}}
r = httpx.post("http://support-bot.trustusbank-bank-agents.svc.cluster.local:8080/", json=body,
               headers={"A2A-Version": "1.0"}, timeout=20)
print(json.dumps({"status": r.status_code, "body": r.json()}))
"""


async def run_in_pod(
    cluster: Cluster, pod: str, code: str, limit: float = 60.0, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run Python "inside" a pod (`kubectl exec`): its connections leave through the pod's node proxy."""
    try:
        found = control.pod_command(cluster.files, pod, [sys.executable, "-c", code], extra_env)
    except control.PodNotRunning as exc:
        return 1, "", str(exc)
    if found is None:
        return 1, "", f"no pod {pod} in the running cluster"
    proc = await asyncio.create_subprocess_exec(
        *found.argv,
        env=found.env,
        cwd=found.cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 1, "", f"timed out after {limit:g}s"
    return proc.returncode or 0, out.decode(), err.decode()


def read_jsonl(path: Path, start: int = 0) -> list[dict[str, Any]]:
    """The records of a JSON-lines log from byte offset `start` (whole lines only)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read()
    records = []
    for line in data.split(b"\n"):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line still being written
    return records


def sizes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_size if p.exists() else 0 for p in paths}


def access_logs(cluster: Cluster) -> list[Path]:
    return [cluster.files.access_log(node.name) for node in cluster.topology.nodes]


def new_access_records(marks: dict[Path, int]) -> list[dict[str, Any]]:
    return [r for path, start in marks.items() for r in read_jsonl(path, start)]


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus series' samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def agent_metrics(cluster: Cluster, agent: str) -> str:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        response = await http.get(f"{cluster.url(AGENTS, agent)}/metrics")
    response.raise_for_status()
    return response.text


def connection(records: list[dict[str, Any]], src: str, dst: str) -> dict[str, dict[str, Any]]:
    """The first outbound and inbound access-log record of a src pod -> dst pod connection."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        if (record.get("src.workload"), record.get("dst.workload")) == (src, dst):
            found.setdefault(str(record.get("direction")), record)
    return found


async def wait_for_connection(
    marks: dict[Path, int], src: str, dst: str, progress: Progress
) -> dict[str, dict[str, Any]]:
    """ztunnel writes a connection's record when it closes; wait (bounded) for both sides."""
    deadline = time.monotonic() + EVIDENCE_WAIT
    found = connection(new_access_records(marks), src, dst)
    while len(found) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = connection(new_access_records(marks), src, dst)
    if len(found) < 2:
        progress(f"only {sorted(found) or 'no'} record(s) of {src} -> {dst} after {EVIDENCE_WAIT:g}s")
    return found


def describe(record: dict[str, Any]) -> str:
    where = record.get("node", "?")
    outcome = f"[red]error={record['error']}[/]" if record.get("error") else "connection complete"
    return (
        f"{record.get('direction')} on {where}: src.workload={record.get('src.workload')} "
        f"src.identity={record.get('src.identity')} → dst.workload={record.get('dst.workload')} "
        f"dst.identity={record.get('dst.identity')}  "
        f"bytes {record.get('bytes_sent')}/{record.get('bytes_recv')}  {outcome}"
    )


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    result = FollowUp("a2a", ok=False, summary="")
    problems = result.problems
    support, fraud, triage = (cluster.pod(AGENTS, n) for n in ("support-bot", "fraud-bot", "triage-bot"))
    triage_principal = f"cluster.local/ns/{AGENTS}/sa/{triage.service_account}"
    agent_log = cluster.files.pod_outputs(cluster.files.pod_dir(AGENTS, support.name))["logs"]
    agent_log = agent_log / f"agent-{AGENTS}-support-bot.jsonl"

    # -- allowed: support-bot -> fraud-bot ------------------------------------------------------
    progress("a2a: asking support-bot about a payment the customer does not recognise")
    fraud_before = await agent_metrics(cluster, "fraud-bot")
    marks = sizes(access_logs(cluster))
    try:
        answer = await cluster.ask(FRAUD_PROMPT)
    except AskError as exc:
        answer = AskResult(reply="", state="failed", status_message=str(exc))
    handoffs = [s for s in answer.tool_calls if s.get("type") == "agent"]
    allowed = await wait_for_connection(marks, support.name, fraud.name, progress)
    fraud_after = await agent_metrics(cluster, "fraud-bot")
    allow_delta = metric(fraud_after, "kagent_accesspolicy_decisions_total", decision="allow") - metric(
        fraud_before, "kagent_accesspolicy_decisions_total", decision="allow"
    )
    handoff = handoffs[0] if handoffs else None
    if answer.state != "completed":
        problems.append(f"the fraud report ended {answer.state}: {answer.status_message}")
    if handoff is None or handoff.get("server") != f"{AGENTS}/fraud-bot" or handoff.get("is_error"):
        problems.append(f"support-bot did not hand the case to fraud-bot: {handoffs}")
    if set(allowed) != {"outbound", "inbound"} or any(r.get("error") for r in allowed.values()):
        problems.append(f"the ztunnel logs do not show {support.name} -> {fraud.name} complete: {allowed}")
    if allow_delta < 1:
        problems.append("fraud-bot's kagent_accesspolicy_decisions_total{decision=allow} did not move")

    # -- denied: triage-bot -> support-bot --------------------------------------------------------
    progress("a2a: triage-bot's pod calls support-bot (no AccessPolicy admits it)")
    support_before = await agent_metrics(cluster, "support-bot")
    marks = sizes(access_logs(cluster))
    log_mark = sizes([agent_log])
    code, out, err = await run_in_pod(cluster, f"{AGENTS}/triage-bot", DENIED_CALL)
    try:
        denied_answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        denied_answer = {}
        problems.append(f"the call from triage-bot's pod failed (exit {code}): {err.strip()[-400:]}")
    denied = await wait_for_connection(marks, triage.name, support.name, progress)
    support_after = await agent_metrics(cluster, "support-bot")
    deny_delta = metric(
        support_after, "kagent_accesspolicy_denied_total", source_principal=triage_principal
    ) - metric(support_before, "kagent_accesspolicy_denied_total", source_principal=triage_principal)
    decisions = [
        r
        for r in read_jsonl(agent_log, log_mark[agent_log])
        if r.get("scope") == "accesspolicy" and r.get("source.principal") == triage_principal
    ]
    error = denied_answer.get("body", {}).get("error") or {}
    if denied_answer and denied_answer.get("status") != 403:
        problems.append(f"support-bot answered triage-bot {denied_answer.get('status')}, not 403")
    if set(denied) != {"outbound", "inbound"} or any(r.get("error") for r in denied.values()):
        problems.append(
            f"the L4 connection {triage.name} -> {support.name} is not logged as complete: {denied}"
        )
    if not decisions:
        problems.append("support-bot's AccessPolicy log has no deny for triage-bot")
    if deny_delta != 1:
        problems.append(f"kagent_accesspolicy_denied_total for triage-bot moved by {deny_delta:g}, not 1")

    # -- the story ----------------------------------------------------------------------------------
    lines = [
        "[bold]allowed[/]  support-bot → fraud-bot (A2A over HBONE; AccessPolicy fraud-bot-callers)",
        f"  customer: {FRAUD_PROMPT}",
        f"  reply:    {answer.reply.splitlines()[0] if answer.reply else '(none)'}",
    ]
    if handoff is not None:
        nested = [s.get("name") for s in handoff.get("steps", [])]
        lines.append(f"  chain:    support-bot → {handoff.get('server')} ({', '.join(map(str, nested))})")
    lines += [f"  ztunnel  {describe(allowed[d])}" for d in ("outbound", "inbound") if d in allowed]
    lines.append(f'  fraud-bot kagent_accesspolicy_decisions_total{{decision="allow"}} +{allow_delta:g}')
    lines += [
        "",
        "[bold]denied[/]   triage-bot → support-bot (L4 allowed, A2A refused by AccessPolicy)",
        f"  A2A answer: HTTP {denied_answer.get('status')} "
        f"JSON-RPC {error.get('code')}: {error.get('message')}",
    ]
    lines += [f"  ztunnel  {describe(denied[d])}" for d in ("outbound", "inbound") if d in denied]
    for record in decisions[:1]:
        lines.append(
            f"  agent log agent-{AGENTS}-support-bot.jsonl: policy={record.get('policy')} "
            f"source.principal={record.get('source.principal')} reason={record.get('reason')}"
        )
    lines.append(
        f'  support-bot kagent_accesspolicy_denied_total{{source_principal="{triage_principal}"}} '
        f"+{deny_delta:g}"
    )
    lines += [
        "",
        f"[bold]left changed[/] (as on a cluster): {SIDE_EFFECTS}; `trustusbank reset` puts the bank's "
        "data back to its seed",
    ]
    result.lines = lines
    result.data = {
        "allowed": {
            "caller": support.spiffe_uri(cluster.topology.trust_domain),
            "callee": fraud.spiffe_uri(cluster.topology.trust_domain),
            "reply": answer.reply,
            "handoff": handoff,
            "ztunnel": allowed,
            "accesspolicy_allow_delta": allow_delta,
        },
        "denied": {
            "caller": triage.spiffe_uri(cluster.topology.trust_domain),
            "callee": support.spiffe_uri(cluster.topology.trust_domain),
            "answer": denied_answer,
            "ztunnel": denied,
            "agent_log": decisions,
            "accesspolicy_denied_delta": deny_delta,
        },
        "side_effects": SIDE_EFFECTS,
    }
    result.ok = not problems
    result.summary = (
        "support-bot → fraud-bot allowed and triage-bot → support-bot denied (403 after a complete L4 "
        "connection), both in the ztunnel logs by src.workload/dst.workload"
        if result.ok
        else "the A2A calls did not show what the demo claims"
    )
    return result
