"""kagent checks: AccessPolicies that contradict the agents' own tools, or that a cluster ignores.

An Agent says whom it calls (its tools of `type: Agent`); AccessPolicies say who may call
whom. When the two disagree, the YAML looks right and the system does not work: a hand-off
the policies refuse is a 403 at the callee's waypoint, and a grant no agent uses only widens
who can call. The decision is `trustusbank.manifests.kagent.access.decide`, the same one the
agent runtime enforces. Other facts these checks rest on (kagent and kagent Enterprise):

* kagent Enterprise enforces an agent's AccessPolicies at a waypoint it provisions only for
  an Agent labelled `kagent.solo.io/waypoint: "true"`; for any other agent the policy is
  reported Failed and nothing is enforced.
* A model key missing from its Secret fails the agent at start (CreateContainerConfigError);
  the key may legitimately be created out of band, so it is only noted.

A linter reads one file as readily as a whole bundle, so a missing object is a finding only
where the input shows enough to tell (the namespace has Agents, or the ModelConfig is there).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from trustusbank.lint.findings import Emitter, Finding, Severity
from trustusbank.manifests.kagent.access import decide, rules_for
from trustusbank.manifests.kagent.objects import ANY_AGENT, WAYPOINT_LABEL, AccessPolicy, Agent, Index
from trustusbank.manifests.manifest import Manifest


def check(manifests: Iterable[Manifest]) -> list[Finding]:
    """Every kagent finding for the manifests (read leniently: unreadable documents are skipped)."""
    index = Index.of(manifests, lenient=True)
    return [
        *_handoffs(index),
        *_unused_grants(index),
        *_missing_targets(index),
        *_no_waypoint(index),
        *_model_keys(index),
    ]


def _emit(manifest: Manifest) -> Emitter:
    return Emitter(manifest)


def _handoffs(index: Index) -> Iterator[Finding]:
    """An agent hands off to one whose AccessPolicies refuse it: the hand-off can never work."""
    if not index.access_policies:
        return
    for caller in index.agents.values():
        for tool in caller.agent_tools:
            namespace = tool.namespace or caller.namespace
            rules, enforced = rules_for(index.access_policies, namespace, tool.name)
            decision = decide(rules, enforced, caller.principal)
            if decision.allowed:
                continue
            if decision.policy is not None:
                why = f"AccessPolicy {decision.policy} denies {caller.name} calling {tool.name}"
            else:
                callers = _allowed_callers(index.access_policies, namespace, tool.name)
                why = f"the AccessPolicies let only {callers} call {tool.name}"
            yield _emit(caller.manifest)(
                ("spec", "declarative", "tools", tool.index),
                Severity.ERROR,
                "kagent-handoff-denied",
                f"{caller.name} hands off to {tool.name}, but {why}: the graph contradicts itself",
                f"the hand-off is refused at {tool.name}'s waypoint (HTTP 403)",
                tool.index,
            )


def _allowed_callers(policies: Iterable[AccessPolicy], namespace: str, agent: str) -> str:
    names = sorted(
        {
            s.describe()
            for p in policies
            if p.action == "ALLOW" and p.targets(namespace, agent)
            for s in p.subjects
        }
    )
    return ", ".join(names) or "no caller"


def _unused_grants(index: Index) -> Iterator[Finding]:
    """An ALLOW for an agent that has no tool calling the target: a grant nothing needs."""
    for policy in index.access_policies:
        if policy.action != "ALLOW" or policy.target_kind != "Agent" or policy.target_name == ANY_AGENT:
            continue
        target = (policy.namespace, policy.target_name)
        for subject in policy.subjects:
            caller = index.agents.get((subject.namespace, subject.name))
            if subject.kind != "Agent" or caller is None:
                continue
            if any((t.namespace or caller.namespace, t.name) == target for t in caller.agent_tools):
                continue
            yield _emit(policy.manifest)(
                ("spec", "from", "subjects", subject.index),
                Severity.WARNING,
                "kagent-unused-grant",
                f"lets {caller.name} call {policy.target_name}, but {caller.name} has no tool of type Agent "
                f"naming {policy.target_name}",
                f"an unused grant: anything running as {caller.principal} may invoke {policy.target_name}",
            )


def _missing_targets(index: Index) -> Iterator[Finding]:
    """A policy for an agent the input neither declares nor calls, judged only where the input
    declares that namespace's agents."""
    for policy in index.access_policies:
        if policy.target_kind != "Agent" or policy.target_name == ANY_AGENT:
            continue
        known = _known_agents(index, policy.namespace)
        declared = [name for ns, name in index.agents if ns == policy.namespace]
        if not declared or policy.target_name in known:
            continue
        close = difflib.get_close_matches(policy.target_name, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        yield _emit(policy.manifest)(
            ("spec", "targetRef", "name"),
            Severity.WARNING,
            "kagent-target-missing",
            f"targets Agent {policy.target_name!r}, which is not in {policy.namespace!r}{hint}",
            "kagent Enterprise reports the policy Failed; it guards nothing",
        )


def _known_agents(index: Index, namespace: str) -> set[str]:
    """Agents of `namespace` the input declares, or names as another agent's tool."""
    known = {name for ns, name in index.agents if ns == namespace}
    for agent in index.agents.values():
        known |= {t.name for t in agent.agent_tools if (t.namespace or agent.namespace) == namespace}
    return known


def _no_waypoint(index: Index) -> Iterator[Finding]:
    """A policy for an agent without the waypoint label: on a cluster nothing enforces it."""
    for policy in index.access_policies:
        if policy.target_kind != "Agent":
            continue
        for agent in _targets(index, policy):
            if agent.has_waypoint:
                continue
            yield _emit(policy.manifest)(
                ("spec", "targetRef"),
                Severity.ERROR,
                "kagent-no-waypoint",
                f'guards Agent {agent.name}, which lacks the label {WAYPOINT_LABEL}: "true"',
                f"kagent Enterprise provisions no waypoint for {agent.name}, so the policy is reported "
                "Failed and every caller reaches the agent",
            )


def _targets(index: Index, policy: AccessPolicy) -> list[Agent]:
    return [a for (ns, name), a in sorted(index.agents.items()) if policy.targets(ns, name)]


def _model_keys(index: Index) -> Iterator[Finding]:
    """An agent whose ModelConfig's key Secret is not in the input."""
    for agent in index.agents.values():
        config = index.model_configs.get((agent.namespace, agent.model_config))
        if config is None or config.api_key_secret is None:
            continue
        if (config.namespace, config.api_key_secret) in index.secrets:
            continue
        yield _emit(agent.manifest)(
            ("spec", "declarative", "modelConfig"),
            Severity.INFO,
            "kagent-model-key-absent",
            f"uses ModelConfig {config.name}, whose Secret {config.api_key_secret!r} is not in the input",
            f"the agent fails at start unless the Secret exists on the cluster (or, in the embedded "
            f"runtime, {config.api_key_secret_key} is set in the environment)",
        )
