"""`demo live-policy`: an incident responder writes a policy file, and the running mesh obeys it.

The file is `deny-acme-fx-everywhere`, an Istio AuthorizationPolicy that DENYs the
converter's port 8000 to the bank's agents and to the platform namespace (the waypoint's
identity, which is how every agent's tool call reaches the converter), labelled with the
incident's id. It is applied as `trustusbank apply -f` applies it, so the change is
validated first and recorded (who, which file, which hash, which objects and labels).

What is shown, in order: the converter answers; the policy is applied and new
connections are refused by the converter's node proxy (the time that took is measured);
the agent's own path, through the waypoint, is refused too; the next customer prompt is
judged by it (convert_currency fails in the tool-call chain, the reply says so); the
runtime log holds the change; the policy is deleted and calls work again.

Real ztunnel also closes open connections that a policy update no longer allows (its
`PolicyWatcher`), so the waypoint's pooled connection to the converter does not outlive
the policy; the demo checks that path separately and says so if it does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from trustusbank.runtime.apply import APPLIED_EVENT, DELETED_EVENT
from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.scenario.followups.policies import (
    AGENTS,
    INCIDENT_LABEL,
    PLATFORM,
    VENDORS,
    applied_policy,
    deny_port_from_namespaces,
    incident_id,
    to_yaml,
)
from trustusbank.scenario.followups.policies.probes import (
    CONVERTER_URL,
    McpAnswer,
    PodMcp,
    json_lines_since,
    route_url,
    size,
)
from trustusbank.scenario.followups.preconditions import Needs
from trustusbank.workloads.chatbot.client import AskResult

# The "before" picture needs support-bot's own new connections to the converter allowed, which the
# defence set's default-deny refuses: the demo runs with the set off, and puts it back afterwards.
NEEDS = Needs(defence=False)
POLICY = "deny-acme-fx-everywhere"
CONVERTER = "currency-converter"
PORT = 8000
CONVERSION = {"amount": 100, "from_ccy": "GBP", "to_ccy": "USD"}
POLL_SECONDS = 10.0
POLL_INTERVAL = 0.05
POOLED_CONNECTION_GAP = (
    "the waypoint's pooled connection to the converter, opened before the policy, was not closed. Real "
    "ztunnel closes connections a policy update no longer allows (istio/ztunnel "
    "src/proxy/connection_manager.rs, PolicyWatcher); the embedded node proxy re-checks only new connections"
)

Probe = Callable[[], Awaitable[McpAnswer]]


def _convert_step(answer: AskResult) -> dict[str, Any] | None:
    return next((s for s in answer.tool_calls if s.get("name") == "convert_currency"), None)


def _chain(answer: AskResult) -> list[str]:
    lines = [f"    {escape(answer.reply)}"]
    for step in answer.tool_calls:
        outcome = f"[red]error[/]: {escape(str(step.get('result'))[:120])}" if step.get("is_error") else "ok"
        lines.append(f"    {step.get('server')} › {step.get('name')}: {outcome}")
    return lines


async def _until(probe: Probe, refused: bool, within: float) -> tuple[float | None, McpAnswer | None]:
    """Seconds until `probe` is refused (or served again), polling; None if that did not happen in time."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < within:
        last = await probe()
        if (not last.ok) == refused:
            return time.monotonic() - started, last
        await asyncio.sleep(POLL_INTERVAL)
    return None, last


@dataclass
class Demo:
    cluster: Cluster
    progress: Progress
    result: FollowUp
    direct: PodMcp  # support-bot → converter, a new connection (new HBONE tunnel) every call
    via_waypoint: PodMcp  # the agents' path: support-bot → waypoint → converter

    async def new_connection(self) -> McpAnswer:
        return await self.direct.call(CONVERTER_URL, "convert_currency", CONVERSION)

    async def agent_path(self) -> McpAnswer:
        return await self.via_waypoint.call(route_url("currency"), "convert_currency", CONVERSION)

    def problem(self, text: str) -> None:
        self.result.problems.append(text)

    async def before(self) -> AskResult | None:
        """The seed prompt and both paths to the converter work: there is something to take away."""
        self.progress("before: the seed prompt, and the converter on both paths")
        answer = await self.cluster.ask()
        self.result.lines += ["[bold]before[/]: the customer's reply and tool calls", *_chain(answer)]
        step = _convert_step(answer)
        if step is None or step.get("is_error"):
            why = (
                str(step.get("result"))[:200]
                if step
                else f"not called ({answer.state}: {answer.reply[:120]})"
            )
            self.problem(
                f"convert_currency did not work before the policy, so there is nothing to take away: {why}"
            )
            return None
        for name, probe in (("a new connection", self.new_connection), ("the waypoint", self.agent_path)):
            found = await probe()
            if not found.ok:
                self.problem(f"before the policy, the converter refused {name}: {found.describe()}")
        return None if self.result.problems else answer

    async def during(self, before: AskResult, node: str, access_offset: int) -> None:
        """With the policy in force: how long until it bites, on each path, and the next prompt."""
        lines, data = self.result.lines, self.result.data
        self.progress("polling until the converter refuses")
        picked_up, refusal = await _until(self.new_connection, True, POLL_SECONDS)
        via_waypoint, waypoint_refusal = await _until(self.agent_path, True, POLL_SECONDS)
        data["pickup_seconds"], data["waypoint_refused_after_seconds"] = picked_up, via_waypoint
        if picked_up is None:
            self.problem(
                f"new connections to the converter were still served {POLL_SECONDS:.0f}s after the apply"
            )
        else:
            lines.append(
                f"[bold]picked up without a restart[/]: new connections from {AGENTS} refused "
                f"{picked_up * 1000:.0f} ms after the apply ({escape(refusal.describe()) if refusal else ''})"
            )
        if via_waypoint is None:
            self.problem(f"calls through the waypoint still reached the converter: {POOLED_CONNECTION_GAP}")
        else:
            lines.append(
                "the agents' path (support-bot → waypoint → converter) refused too "
                f"({escape(waypoint_refusal.describe()) if waypoint_refusal else ''})"
            )
        self.progress("the next customer prompt")
        after = await self.cluster.ask()
        lines += ["[bold]the next prompt[/], judged by the new policy:", *_chain(after)]
        data["reply_before"], data["reply_during"] = before.reply, after.reply
        step = _convert_step(after)
        if step is not None and not step.get("is_error"):
            self.problem("the next prompt's convert_currency was not refused")
        elif after.reply == before.reply:
            self.problem("the reply did not change although the conversion failed")
        elif step is None:
            # The agent lists its tools per prompt: with the converter refused, even the listing
            # fails, so convert_currency is not on offer at all and the model says so.
            lines.append("the converter's tools could not even be listed: the model was not offered them")
        log = self.cluster.files.access_log(node)
        denies = [
            r
            for r in json_lines_since(log, access_offset)
            if f"explicitly denied by: {VENDORS}/{POLICY}" in str(r.get("error") or "")
        ]
        sources = sorted({str(r.get("src.identity")) for r in denies})
        data["deny_sources"] = sources
        lines.append(
            f"the converter's node proxy logged {len(denies)} denies by {VENDORS}/{POLICY}, "
            f"from {', '.join(sources) or 'nobody'} ({log})"
        )

    async def after(self, before: AskResult) -> None:
        """Deleted: both paths are served again and the customer gets the first reply back."""
        self.progress(f"{POLICY}.yaml deleted; polling until calls work again")
        restored, _ = await _until(self.new_connection, False, POLL_SECONDS)
        restored_waypoint, _ = await _until(self.agent_path, False, POLL_SECONDS)
        again = await self.cluster.ask()
        self.result.data["restore_seconds"] = restored
        if restored is None or restored_waypoint is None:
            self.problem("calls to the converter did not work again after the delete")
        else:
            self.result.lines.append(
                f"[bold]deleted[/]: new connections served again after {restored * 1000:.0f} ms; "
                f"the next reply is the first one again: {again.reply == before.reply}"
            )
        if again.reply != before.reply:
            self.problem("after the delete, the reply differs from the one before the policy")

    def evidence(self, offset: int, incident: str) -> None:
        """Who changed what: the apply and the delete in the runtime event log."""
        events = [
            e
            for e in json_lines_since(self.cluster.files.events, offset)
            if e.get("event") in (APPLIED_EVENT, DELETED_EVENT) and e.get("file") == f"{POLICY}.yaml"
        ]
        self.result.data["events"] = events
        for event in events:
            when = time.strftime("%H:%M:%S", time.localtime(float(event["time"])))
            objects = ", ".join(f"{o['kind']} {o['namespace']}/{o['name']}" for o in event["objects"])
            labels = json.dumps(event["labels"])
            self.result.lines.append(
                f"recorded in {self.cluster.files.events}: {when} {event['event']} by {event['actor']}: "
                f"{event['file']} sha256 {event['sha256'][:12]}…, {objects}, labels {labels}"
            )
        kinds = [e["event"] for e in events]
        if APPLIED_EVENT not in kinds or DELETED_EVENT not in kinds:
            self.problem(f"the apply and the delete are not both recorded in {self.cluster.files.events}")
        elif any(e["labels"].get(INCIDENT_LABEL) != incident for e in events):
            self.problem(f"a recorded change does not carry {INCIDENT_LABEL}={incident}")


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    incident = incident_id(1)
    document = deny_port_from_namespaces(
        POLICY, VENDORS, CONVERTER, PORT, [AGENTS, PLATFORM], {INCIDENT_LABEL: incident}
    )
    result = FollowUp("live-policy", ok=False, summary="", data={"policy": document, "incident_id": incident})
    converter = cluster.pod(VENDORS, CONVERTER)
    access_offset = size(cluster.files.access_log(converter.node))
    events_offset = size(cluster.files.events)
    direct, via_waypoint = (
        PodMcp(cluster, AGENTS, "support-bot", reuse=False),
        PodMcp(cluster, AGENTS, "support-bot"),
    )
    demo = Demo(cluster, progress, result, direct, via_waypoint)
    before = None
    try:
        async with via_waypoint:
            before = await demo.before()
            if before is not None:
                result.lines += [
                    f"[bold]the new policy file[/] {POLICY}.yaml:",
                    *(f"  {escape(x)}" for x in to_yaml(document).splitlines()),
                ]
                async with applied_policy(cluster, document, progress):
                    await demo.during(before, converter.node, access_offset)
                await demo.after(before)
    except Exception as exc:  # reported; the policy file was removed on the way out
        demo.problem(f"{type(exc).__name__}: {exc}")
    if before is not None:
        demo.evidence(events_offset, incident)
    result.ok = not result.problems
    pickup = result.data.get("pickup_seconds")
    timing = f" {pickup * 1000:.0f} ms after the apply" if isinstance(pickup, float) else ""
    result.summary = (
        f"{POLICY} ({INCIDENT_LABEL} {incident}) took effect{timing} without a restart, the next prompt's "
        "conversion was refused, the change was recorded, and deleting it restored the service"
        if result.ok
        else f"{POLICY} did not act as a live policy change should: {result.problems[0]}"
    )
    return result
