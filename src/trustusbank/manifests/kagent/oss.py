"""kagent Enterprise's AccessPolicy on a kagent OSS cluster: the same rules, as Istio policy.

kagent OSS has no AccessPolicy CRD, so on such a cluster nothing reads `access-policies.yaml`
(the embedded runtime enforces it in the agent, `agents/a2a/access_guard.py`). Here each
agent an AccessPolicy guards becomes one Istio `AuthorizationPolicy` that ztunnel enforces.

Why ztunnel (a `selector`, L4) and not the waypoint (`targetRefs`, L7):
* The subjects are SPIFFE principals, which ztunnel checks from the caller's mTLS
  certificate; and an Agent target is the whole agent (only MCPServer targets name tools),
  so L7 would add nothing a principal rule needs.
* The agents' namespace has no waypoint (`istio.io/use-waypoint` is on trustusbank-platform
  only), and a policy bound to a Service without one is enforced by nothing. Were a waypoint
  added, ztunnel would see the waypoint's identity instead of the caller's, and these
  policies would refuse every call: they fail closed, never open.
* ztunnel sits at the destination pod, so a caller cannot route around it.

Why DENY with `notPrincipals`, never ALLOW: ALLOW policies are ORed, so an ALLOW can only
widen, and `08-defence` already admits `ns/trustusbank-bank-agents/sa/*` to every agent; an
ALLOW-based translation would leave support-bot free to call triage-bot. A DENY narrows
whatever else is applied, and adds no ALLOW of its own, so it never turns on ztunnel's
"some ALLOW selects the workload, so everything else is denied" for callers the defence set
admits (the alert evaluator's scrapes of /metrics on the A2A port, 8080). It never widens
either: a caller must still pass the defence set.

The rules, per agent (the decision of `access.decide` for a caller with no verifiable user
token, which is what the embedded agent enforces):
* a DENY AccessPolicy naming principals -> a rule denying those principals;
* an allowlist (any ALLOW, or the subject-less baseline) -> deny every principal not named
  by an ALLOW, except `scrapers` (L4 cannot tell a scrape from an A2A call on one port);
* only DENYs target the agent -> deny only callers with no identity (the guard's rule);
* a UserGroup subject is a claim of the caller's JWT, which ztunnel never sees and which
  needs RequestAuthentication at a waypoint: an ALLOW's groups admit nobody, and a DENY
  naming groups denies every caller but `scrapers`, as the embedded guard does.
A target of "*" is expanded to the agents the input declares: re-render when agents change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from trustusbank.manifests.kagent.access import ANYONE, rules_for
from trustusbank.manifests.kagent.objects import ANY_AGENT, AccessPolicy, AccessSubject, Index, principal

AUTHORIZATION_POLICY_API = "security.istio.io/v1"
GENERATED_FROM = "trustusbank.dev/generated-from"
MANAGED_BY = "app.kubernetes.io/managed-by"
NAME_PREFIX = "kagent-access-"
RENDER_COMMAND = "trustusbank manifests oss-access"
# Who scrapes the agents' /metrics (on their A2A port): `10-observability/alert-evaluator.yaml`.
SCRAPERS: tuple[str, ...] = (principal("trustusbank-observability", "alert-evaluator"),)


def pod_selector(agent: str) -> dict[str, str]:
    """Two of the labels kagent puts on an agent's pods (its translator sets both; its e2e tests find
    agent pods by them)."""
    return {"app.kubernetes.io/managed-by": "kagent", "app.kubernetes.io/name": agent}


def policy_name(agent: str) -> str:
    return f"{NAME_PREFIX}{agent}"


def guarded_agents(index: Index) -> list[tuple[str, str]]:
    """(namespace, agent) for every agent an AccessPolicy targets; "*" means the declared ones."""
    found: set[tuple[str, str]] = set()
    for policy in index.access_policies:
        if policy.target_kind != "Agent":
            continue
        if policy.target_name == ANY_AGENT:
            found |= {key for key in index.agents if key[0] == policy.namespace}
        elif policy.target_name:
            found.add((policy.namespace, policy.target_name))
    return sorted(found)


@dataclass(frozen=True)
class AgentRules:
    """What the AccessPolicies say of one agent, in the terms an L4 policy can hold."""

    namespace: str
    agent: str
    sources: tuple[str, ...]  # the AccessPolicies targeting it, `<ns>/<name>`
    denied: tuple[str, ...]  # principals an explicit DENY names
    admitted: tuple[str, ...] | None  # the only principals let through; None: any identity

    def spec(self) -> dict[str, Any]:
        rules: list[dict[str, Any]] = []
        if self.denied:
            rules.append(_from({"principals": list(self.denied)}))
        if self.admitted is None:
            rules.append(_from({"notPrincipals": [ANYONE]}))
        elif self.admitted:
            rules.append(_from({"notPrincipals": list(self.admitted)}))
        else:
            rules.append({})  # an empty rule matches every connection
        return {"selector": {"matchLabels": pod_selector(self.agent)}, "action": "DENY", "rules": rules}


def _from(source: dict[str, list[str]]) -> dict[str, Any]:
    return {"from": [{"source": source}]}


def agent_rules(index: Index, namespace: str, agent: str, scrapers: Sequence[str] = SCRAPERS) -> AgentRules:
    rules, _ = rules_for(index.access_policies, namespace, agent)
    targeting = tuple(sorted(p.ref for p in index.access_policies if p.targets(namespace, agent)))
    denies = [r for r in rules if r.action == "DENY"]
    allows = [r for r in rules if r.action == "ALLOW"]
    denied = _unique(p for r in denies for p in r.principals)
    admitted: tuple[str, ...] | None
    if any(r.user_groups for r in denies):
        admitted = _unique(scrapers)
    elif any(ANYONE in r.principals for r in allows):
        admitted = None
    else:
        admitted = _unique([*(p for r in allows for p in r.principals), *scrapers])
    return AgentRules(namespace, agent, targeting, denied, admitted)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def authorization_policies(index: Index, scrapers: Sequence[str] = SCRAPERS) -> list[dict[str, Any]]:
    """One DENY AuthorizationPolicy document per guarded agent, recognisable by label and annotation."""
    documents = []
    for namespace, agent in guarded_agents(index):
        found = agent_rules(index, namespace, agent, scrapers)
        metadata = {
            "name": policy_name(agent),
            "namespace": namespace,
            "labels": {MANAGED_BY: "trustusbank", GENERATED_FROM: "AccessPolicy"},
            # A label value cannot hold "/": the full references go in an annotation.
            "annotations": {GENERATED_FROM: ",".join(f"AccessPolicy/{ref}" for ref in found.sources)},
        }
        documents.append(
            {
                "apiVersion": AUTHORIZATION_POLICY_API,
                "kind": "AuthorizationPolicy",
                "metadata": metadata,
                "spec": found.spec(),
            }
        )
    return documents


def user_group_subjects(index: Index) -> list[tuple[AccessPolicy, AccessSubject]]:
    """Subjects no Istio policy can check without request authentication (a JWT at a waypoint)."""
    return [
        (policy, subject)
        for policy in index.access_policies
        if policy.target_kind == "Agent"
        for subject in policy.subjects
        if subject.kind == "UserGroup"
    ]


def user_group_effect(policy: AccessPolicy) -> str:
    if policy.action == "DENY":
        return "the generated policy denies every caller but the scrapers instead (failing closed)"
    return "the generated policy admits nobody by group membership"


def to_yaml(documents: Sequence[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in documents)
