"""The defence levels the benchmark compares, and how the bench's cluster is put at each.

Cumulative, in the order the issue names them, each adding one layer of the reference pattern:

  none        mTLS identities only: no AuthorizationPolicy, no MCP allowlist, no guard, no AccessPolicy
  l4          + the defence set (deploy/08-defence): ztunnel's default-deny and identity ALLOWs,
              deny-bank-to-attacker
  allowlists  + the waypoint's MCP tool allowlists (deploy/06-agentgateway/mcp-allowlists.yaml)
  guard       + the MCP guard the waypoint calls (deploy/extras/mcp-guard-policy.yaml)
  all         + kagent's AccessPolicies (deploy/07-agents/access-policies.yaml): who may call which agent

The bench's cluster runs from its own copy of deploy/ (TRUSTUSBANK_DEPLOY_DIR), so a level is
a set of files present in that copy, which every component re-reads when it changes; the
defence set goes through the same `converge` as `policies on|off`. A level is in force when
every node proxy enforces its AuthorizationPolicies, the waypoint has loaded (or dropped) its
AgentgatewayPolicies, and the agents were restarted onto their AccessPolicies (kagent renders
those into the agent's spec, which a pod reads when it starts).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustusbank.manifests.yaml_source import read_documents

ALLOWLISTS = "06-agentgateway/mcp-allowlists.yaml"
ACCESS = "07-agents/access-policies.yaml"
GUARD = "06-agentgateway/mcp-guard-policy.yaml"  # where the bench puts deploy/extras' guard policy
GUARD_SOURCE = "extras/mcp-guard-policy.yaml"
AGENTS = ("support-bot", "fraud-bot", "triage-bot")
AGENT_MODES = ("declared", "broad")
# What an over-broad support-bot is given beyond its job: every tool of the transaction and ticket
# servers, and a hand-off to triage-bot. The allowlists and the AccessPolicies are then all that
# stand between an instruction and those tools, as they are when an agent's config is too wide.
BROAD_TOOLS = {
    "transaction-mcp": ["list_recent", "get_details", "flag_suspicious"],
    "ticket-mcp": ["create_ticket", "notify_human"],
}
BROAD_AGENTS = ("triage-bot",)
AGENT_NAMESPACE = "trustusbank-bank-agents"


@dataclass(frozen=True)
class Level:
    name: str
    l4: bool
    files: frozenset[str]  # the toggled files present in the bench's deploy copy
    summary: str


LEVELS: tuple[Level, ...] = (
    Level("none", False, frozenset(), "mTLS identities only"),
    Level("l4", True, frozenset(), "+ L4 identity policy (ztunnel)"),
    Level("allowlists", True, frozenset({ALLOWLISTS}), "+ MCP tool allowlists (waypoint CEL)"),
    Level("guard", True, frozenset({ALLOWLISTS, GUARD}), "+ MCP guard (waypoint external processor)"),
    Level("all", True, frozenset({ALLOWLISTS, GUARD, ACCESS}), "+ AccessPolicy (kagent)"),
)
TOGGLED = (ALLOWLISTS, GUARD, ACCESS)


def levels(names: tuple[str, ...] | None) -> list[Level]:
    known = {level.name: level for level in LEVELS}
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise ValueError(f"unknown defence level {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names] if names else list(LEVELS)


def copy_deploy(deploy: Path, target: Path, *, guard: bool = True) -> Path:
    """A fresh copy of deploy/ for the bench's cluster, with every toggled file kept aside."""
    aside = kept_aside(target)
    for previous in (target, aside):  # a previous run's copy: deploy/ may have changed since
        if previous.exists():
            shutil.rmtree(previous)
    shutil.copytree(deploy, target, ignore=shutil.ignore_patterns("extras"))
    aside.mkdir(parents=True)
    for name in (ALLOWLISTS, ACCESS):
        (target / name).replace(aside / name.replace("/", "__"))
    if guard:
        shutil.copyfile(deploy / GUARD_SOURCE, aside / GUARD.replace("/", "__"))
    return target


def kept_aside(copy: Path) -> Path:
    return copy.parent / f"{copy.name}-aside"


def place(copy: Path, wanted: frozenset[str]) -> set[str]:
    """Make exactly `wanted` of the toggled files present in the copy; returns the files changed."""
    changed = set()
    for name in TOGGLED:
        present, stored = copy / name, kept_aside(copy) / name.replace("/", "__")
        if name in wanted and not present.exists():
            shutil.copyfile(stored, present)
            changed.add(name)
        elif name not in wanted and present.exists():
            present.unlink()
            changed.add(name)
    return changed


def policy_names(path: Path, kind: str) -> list[str]:
    documents, _ = read_documents(path)
    return [
        str(d.data["metadata"]["name"])
        for d in documents
        if isinstance(d.data, dict) and d.data.get("kind") == kind
    ]


def _tool(server: str, names: list[str]) -> dict[str, Any]:
    reference = {"apiGroup": "kagent.dev", "kind": "RemoteMCPServer", "name": server, "toolNames": names}
    return {"type": "McpServer", "mcpServer": reference}


def broaden(copy: Path, agent: str = "support-bot") -> None:
    """Give `agent`, in the bench's deploy copy, the tools and hand-offs of BROAD_*: a too-wide Agent."""
    path = copy / "07-agents" / f"{agent}.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    spec = next(d for d in documents if d and d.get("kind") == "Agent")["spec"]["declarative"]
    tools = [t for t in spec["tools"] if t.get("mcpServer", {}).get("name") not in BROAD_TOOLS]
    tools += [_tool(server, names) for server, names in BROAD_TOOLS.items()]
    known = {t["agent"]["name"] for t in tools if t.get("type") == "Agent"}
    tools += [{"type": "Agent", "agent": {"name": name}} for name in BROAD_AGENTS if name not in known]
    spec["tools"] = tools
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
