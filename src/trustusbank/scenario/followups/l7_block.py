"""`demo l7-block`: stop the convert_currency call that carries the profile at the waypoint, before it leaves.

What real agentgateway can and cannot do decides the design. Its MCP authorization
sees the tool's identity only: `backend.mcp.authorization` rules are evaluated on
`mcp.tool.{name,target}` and the caller (`MCPInfo::from(&ResourceType)` in
agentgateway's `crates/agentgateway/src/mcp/rbac.rs`; the call's arguments are copied
into the access-log record, not into what the rules see). A rule on
`mcp.tool.arguments` errors, and a rule that errors does not match: as an allow rule it
allows nothing, as a deny rule it denies nothing. So "refuse the call whose arguments
hold a profile" cannot be written on `mcp.tool.arguments` (agentgateway's raw
`request.body` might serve, but the embedded waypoint does not provide it, so it is not
used); "refuse convert_currency to support-bot while the incident lasts" can, and it
refuses the leaking call with every other conversion, at the waypoint, with a JSON-RPC
error, before a byte goes to the converter.

The runbook's own version, an Istio AuthorizationPolicy selecting the gateway's pods
with a DENY on `paths`, is enforced by ztunnel, which cannot see paths: `policy lint`
says what it really does (denies all traffic to the gateway's port).
"""

from __future__ import annotations

import asyncio
import importlib
import tempfile
from pathlib import Path
from typing import Any

from rich.markup import escape

from trustusbank.lint import Severity, lint_path
from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.scenario.followups.policies import (
    AGENTS,
    INCIDENT_LABEL,
    VENDORS,
    applied_policy,
    gateway_pod_deny_on_paths,
    incident_id,
    mcp_authorization,
    to_yaml,
    write,
)
from trustusbank.scenario.followups.policies.probes import (
    McpAnswer,
    PodMcp,
    json_lines_since,
    route_url,
    size,
    text_since,
    wait_for_waypoint,
    waypoint_log_offset,
    waypoint_pod,
    waypoint_request_log,
)

BLOCK = "incident-block-convert-currency"
BACKEND = "currency-converter"
CONVERTER = "currency-converter"
RUG_PULL = "real-rugpull"
COMMAND = "trustusbank demo l7-block"
WARM_UP = "What can you help me with?"
SUPPORT_BOT_ID = f"spiffe://cluster.local/ns/{AGENTS}/sa/support-bot"
CONVERSION = {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD"}
IS_SUPPORT_BOT = f'source.identity.namespace == "{AGENTS}" && source.identity.serviceAccount == "support-bot"'
NO_PROFILE = '!("customer_profile" in mcp.tool.arguments)'
AGENTGATEWAY_SOURCE = (
    "agentgateway crates/agentgateway/src/mcp/rbac.rs: MCPInfo::from(&ResourceType) gives the rules "
    "mcp.tool.{target,name} only; session.rs copies the arguments into the log record"
)


def argument_rule() -> dict[str, Any]:
    """What the issue asks for: an MCP authorization rule on `mcp.tool.arguments`."""
    return mcp_authorization(
        "allow-conversion-without-profile",
        BACKEND,
        "Allow",
        [f'{IS_SUPPORT_BOT} && mcp.tool.name == "convert_currency" && {NO_PROFILE}'],
    )


def block_policy(incident: str) -> dict[str, Any]:
    """The block that works on agentgateway: deny the tool, by name, to the fooled agent."""
    return mcp_authorization(
        BLOCK,
        BACKEND,
        "Deny",
        [f'{IS_SUPPORT_BOT} && mcp.tool.name == "convert_currency"'],
        {INCIDENT_LABEL: incident},
    )


def writeup_block() -> dict[str, Any]:
    """The runbook's "L7 pre-call block": gateway pods selected, DENY on POST to the currency path."""
    return gateway_pod_deny_on_paths("l7-precall-block", ["/mcp/currency*"], 8080)


def lint(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """`trustusbank policy lint` on each document, as the file a user would lint."""
    found: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="trustusbank-lint-") as folder:
        for document in documents:
            path = write(document, Path(folder))
            found[path.name] = [
                {
                    "severity": str(f.severity),
                    "code": f.code,
                    "rule": f.rule,
                    "message": f.message,
                    "on_cluster": getattr(f, "on_cluster", ""),
                }
                for f in lint_path(path)
                if f.severity in (Severity.ERROR, Severity.WARNING)
            ]
    return found


def _converter_requests(cluster: Cluster) -> int:
    """Requests the converter's MCP server has answered (its access log lines)."""
    pod = cluster.pod(VENDORS, CONVERTER)
    return text_since(cluster.files.pod_log(pod.namespace, pod.name), 0).count('"POST /mcp')


async def _settle(predicate: Any, within: float = 2.0) -> Any:
    for _ in range(int(within / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    return predicate()


class RugPull:
    """Act 2's build behind the converter's tag, when `upgrade-banking-app` exists; put back afterwards."""

    def __init__(self, cluster: Cluster, progress: Progress) -> None:
        self.cluster, self.progress = cluster, progress
        self.scripts: Any = None
        self.previous: str | None = None
        try:
            self.scripts = importlib.import_module("trustusbank.scenario.changes")
        except ImportError:
            self.scripts = None

    @property
    def available(self) -> bool:
        return self.scripts is not None

    async def _upgrade(self, variant: str) -> Any:
        self.progress(f"upgrade-banking-app --variant {variant}")
        return await self.scripts.upgrade(
            self.cluster.files, variant, progress=self.progress, command=f"{COMMAND} (--variant {variant})"
        )

    async def __aenter__(self) -> RugPull:
        if self.scripts is None:
            return self
        try:
            swap = await self._upgrade(RUG_PULL)
        except Exception as exc:  # a push that happened before the failure is undone
            swap = getattr(exc, "swap", None)
            if swap is not None and swap.pushed:
                await self._upgrade(swap.old_variant or self.scripts.CLEAN)
            raise
        self.previous = swap.old_variant or self.scripts.CLEAN
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.scripts is not None and self.previous not in (None, RUG_PULL):
            await self._upgrade(str(self.previous))


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    incident = incident_id(2)
    block = block_policy(incident)
    result = FollowUp("l7-block", ok=False, summary="")
    lines, problems, data = result.lines, result.problems, result.data
    waypoint = waypoint_pod(cluster)
    waypoint_id = f"spiffe://cluster.local/ns/{waypoint.namespace}/sa/{waypoint.service_account}"
    converter_id = f"spiffe://cluster.local/ns/{VENDORS}/sa/{cluster.pod(VENDORS, CONVERTER).service_account}"

    lines += [
        "[bold]what the real engine allows[/]: MCP authorization sees the tool's name and target and the "
        "caller, not the call's arguments",
        f"  ({AGENTGATEWAY_SOURCE})",
        "  not used here: agentgateway buffers the body for a rule that reads `request.body`, so a rule on "
        "`json(request.body).params.arguments` may work on a real cluster (not verified against a running "
        "agentgateway); the embedded waypoint does not provide `request.body`, and such a rule fails open as "
        "a Deny",
    ]
    findings = lint([argument_rule(), writeup_block()])
    data["lint"] = findings
    for name, found in findings.items():
        lines.append(f"[bold]policy lint {name}[/]:")
        for f in found:
            lines.append(f"  {f['severity']} {f['code']}: {escape(f['message'])}")
            lines += [f"    on a real cluster: {escape(f['on_cluster'])}"] if f["on_cluster"] else []
        if not any(f["severity"] == "error" for f in found):
            problems.append(f"policy lint raised no error for {name}")
    block_findings = lint([block])[f"{BLOCK}.yaml"]
    if block_findings:
        problems.append(f"policy lint objects to the block itself: {block_findings[0]['message']}")
    verdict = "clean" if not block_findings else "see the problems"
    lines += [
        f"[bold]the block that works[/] ({BLOCK}.yaml; policy lint: {verdict}):",
        *(f"  {escape(x)}" for x in to_yaml(block).splitlines()),
    ]

    # The agent lists its tools once and keeps the list: let it do so before the block, so that the block
    # does not outlive the demo in support-bot's memory (a question that calls no tool is enough).
    progress("support-bot lists its tools")
    await cluster.ask(WARM_UP)
    rug_pull = RugPull(cluster, progress)
    if not rug_pull.available:
        lines.append(
            "[yellow]Act 2's build is required to show the fooled agent; `upgrade-banking-app` is not "
            "available, so the converter stays clean and the leaking call is made as the agent would[/]"
        )
    log = waypoint_request_log(cluster)
    try:
        async with rug_pull, PodMcp(cluster, AGENTS, "support-bot") as mcp:
            if rug_pull.available:
                lines.append(
                    f"converter: Act 2's {RUG_PULL} build behind the same tag (upgrade-banking-app), "
                    f"{rug_pull.previous} again afterwards"
                )
            data["converter_build"] = RUG_PULL if rug_pull.available else "as found"
            profile = await mcp.call(route_url("account"), "get_profile", {"customer_id": "12345"})
            if not profile.ok:
                raise RuntimeError(f"support-bot could not read the profile to leak: {profile.describe()}")
            leak = {**CONVERSION, "customer_profile": profile.structured}
            since = waypoint_log_offset(cluster)
            async with applied_policy(cluster, block, progress):
                await wait_for_waypoint(cluster, BLOCK, present=True, since=since)
                await _leaking_call(cluster, mcp, leak, log, waypoint_id, converter_id, result)
                await _agent_prompt(cluster, result)
                since = waypoint_log_offset(cluster)
            await wait_for_waypoint(cluster, BLOCK, present=False, since=since)
            again = await mcp.call(route_url("currency"), "convert_currency", CONVERSION)
            lines.append(
                f"{BLOCK} removed: support-bot's plain conversion works again ({escape(again.describe())})"
            )
            if not again.ok:
                problems.append(
                    f"after the block was removed, convert_currency still failed: {again.describe()}"
                )
    except Exception as exc:  # reported; the block and the build were put back on the way out
        problems.append(f"{type(exc).__name__}: {exc}")
    result.ok = not problems
    result.summary = (
        "the profile-carrying convert_currency was refused at the waypoint (JSON-RPC error, logged with "
        "support-bot's SPIFFE identity and the rule) and never reached the converter; policy lint flags the "
        "runbook's paths DENY and the arguments rule"
        if result.ok
        else f"the L7 block did not hold: {problems[0]}"
    )
    data["policy"] = block
    data["incident_id"] = incident
    return result


async def _leaking_call(
    cluster: Cluster,
    mcp: PodMcp,
    leak: dict[str, Any],
    log: Path,
    waypoint_id: str,
    converter_id: str,
    result: FollowUp,
) -> None:
    """The call the injection asks for, made as support-bot; it must stop at the waypoint."""
    lines, problems = result.lines, result.problems
    converter = cluster.pod(VENDORS, CONVERTER)
    access = cluster.files.access_log(converter.node)
    marks = (size(log), size(access), _converter_requests(cluster), cluster.exfil_total())
    answer: McpAnswer = await mcp.call(route_url("currency"), "convert_currency", leak)
    said = escape(answer.describe())
    lines.append(f"[bold]the leaking call[/] (convert_currency + customer_profile as support-bot): {said}")
    if answer.status != 403 or answer.error is None:
        problems.append(f"the leaking call was not refused with a JSON-RPC error: {answer.describe()}")

    def deny_line() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in json_lines_since(log, marks[0])
                if r.get("mcp.tool") == "convert_currency" and r.get("decision") == "deny"
            ),
            None,
        )

    line = await _settle(deny_line)
    if line is None:
        problems.append(f"no deny line for the leaking call in {log}")
    else:
        lines.append(
            f"  the waypoint ({waypoint_id}) logged: {line.get('decision')} {line.get('mcp.method')} "
            f"{line.get('mcp.tool')} from {line.get('src.identity')}, HTTP {line.get('http.status')}, "
            f"{escape(str(line.get('reason')))} ({log})"
        )
        if line.get("src.identity") != SUPPORT_BOT_ID:
            problems.append(f"the deny names {line.get('src.identity')}, not {SUPPORT_BOT_ID}")
        result.data["deny"] = line
    await asyncio.sleep(0.2)  # anything that did get through would show up by now
    inbound = [r for r in json_lines_since(access, marks[1]) if r.get("dst.workload") == converter.name]
    served = _converter_requests(cluster) - marks[2]
    exfil = cluster.exfil_total() - marks[3]
    lines.append(
        f"  never reached {converter_id}: {served} new requests in its access log, {len(inbound)} new "
        f"connections at its node proxy, {exfil} new events at the attacker"
    )
    result.data["after_leaking_call"] = {
        "converter_requests": served,
        "connections": len(inbound),
        "exfil": exfil,
    }
    if served or exfil:
        problems.append(f"the converter saw {served} requests and the attacker {exfil} events")


async def _agent_prompt(cluster: Cluster, result: FollowUp) -> None:
    """The customer's prompt with the block in force: the agent cannot convert, nothing leaves."""
    before = cluster.exfil_total()
    answer = await cluster.ask()
    exfil = cluster.exfil_total() - before
    tools = [f"{s.get('name')}{' (error)' if s.get('is_error') else ''}" for s in answer.tool_calls]
    result.lines += [
        "[bold]the seed prompt with the block in force[/]:",
        f"    {escape(answer.reply)}",
        f"    tool calls: {', '.join(tools) or 'none'}; {exfil} new events at the attacker",
    ]
    result.data["prompt"] = {"reply": answer.reply, "tool_calls": tools, "new_exfil": exfil}
    leaked = [s for s in answer.tool_calls if "customer_profile" in (s.get("arguments") or {})]
    converted = [
        s for s in answer.tool_calls if s.get("name") == "convert_currency" and not s.get("is_error")
    ]
    if leaked or converted or exfil:
        result.problems.append("with the block in force the agent still converted or leaked")
