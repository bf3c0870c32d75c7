"""What kagent Enterprise's AccessPolicies mean for one caller of one agent.

An AccessPolicy says who may invoke an Agent. kagent Enterprise compiles it into an
EnterpriseAgentgatewayPolicy on the agent's waypoint that matches the caller's SPIFFE identity
(`source.identity.namespace` and `.serviceAccount`), or a JWT group claim for a UserGroup.

Confirmed (kagent Enterprise labs, the seed, agentgateway's authorization semantics):
* Subjects: a ServiceAccount is its own identity; an Agent is the ServiceAccount kagent runs
  it as, which is named after it (`cluster.local/ns/<ns>/sa/<agent>`: kagent's AgentSpec docs
  and its translator's output; a lab's generated CEL compares `serviceAccount` to the agent's
  name); a UserGroup is a group claim of the caller's token (kagent's on-behalf-of token),
  not a workload identity.
* An AccessPolicy is enforced only for an Agent labelled `kagent.solo.io/waypoint: "true"`
  (the lint says so; the embedded runtime enforces it regardless, which is stricter).
* With no AccessPolicy targeting an agent, every caller may invoke it.
* A DENY that matches the caller denies, whatever any ALLOW says (agentgateway evaluates Deny
  rules before Allow rules).
* An ALLOW targeting an agent is an allowlist: a caller it does not name is denied (the
  demo's "support -> fraud = 403" with only fraud-bot's ALLOW for triage-bot).
* "Zero subjects + name '*'" is the deny-all baseline (the seed's wording).

Assumed, because the translation is not public:
* A policy with no subjects names no caller (whatever its action): it allows and denies
  nobody, but puts its targets under an allowlist, so only ALLOWs admit callers. Reading it
  any other way breaks the baseline: subjects-less "everyone" in a DENY would override every
  ALLOW, in an ALLOW it would admit everyone.
* An agent targeted only by DENYs that name callers stays open to everyone else (a lab's
  observation: "without a deny-all baseline, any caller not matched by a DENY is allowed").
  `rules_for` states this as an explicit ALLOW of "*" named `(default-allow)`, so that any
  consumer of the rules (DENY first, then ALLOW, else deny once enforced) decides the same.
* Target "*" covers the Agents in the policy's own namespace (AccessPolicy is namespaced).

Deciding fails closed: a malformed rule matches nothing, which, once an agent is under
policy, means deny.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trustusbank.manifests.kagent.objects import AccessPolicy
from trustusbank.manifests.kagent.spec import AccessRule

ANYONE = "*"
DEFAULT_ALLOW = "(default-allow)"


def rule_of(policy: AccessPolicy) -> AccessRule:
    """One policy as the decision needs it: SPIFFE principals and user groups, never "anyone"."""
    principals = tuple(dict.fromkeys(p for s in policy.subjects if (p := s.principal) is not None))
    groups = tuple(dict.fromkeys(s.name for s in policy.subjects if s.kind == "UserGroup"))
    return AccessRule(policy=policy.ref, action=policy.action, principals=principals, user_groups=groups)


def rules_for(
    policies: Iterable[AccessPolicy], namespace: str, agent: str
) -> tuple[tuple[AccessRule, ...], bool]:
    """The rules that apply to `namespace/agent`, and whether any policy targets it (enforced)."""
    targeting = sorted((p for p in policies if p.targets(namespace, agent)), key=lambda p: p.ref)
    rules = [rule_of(p) for p in targeting]
    allowlist = any(p.action == "ALLOW" or p.baseline for p in targeting)
    if targeting and not allowlist:
        rules.append(AccessRule(policy=f"{namespace}/{DEFAULT_ALLOW}", action="ALLOW", principals=(ANYONE,)))
    return tuple(rules), bool(targeting)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: str | None  # "<namespace>/<name>" of the deciding policy, None when none decided
    reason: str


def principal_matches(pattern: str, principal: str) -> bool:
    """Istio's principal matching: exact, "*", "prefix*" or "*suffix" (`spiffe://` ignored)."""
    pattern, principal = pattern.removeprefix("spiffe://"), principal.removeprefix("spiffe://")
    if pattern == ANYONE:
        return True
    if pattern.endswith("*"):
        return principal.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return principal.endswith(pattern[1:])
    return pattern == principal


def matches(rule: AccessRule, principal: str | None, groups: Sequence[str] = ()) -> bool:
    """A caller with no workload identity (a person, through the console) is matched only by "*"
    among principals: it is anyone, but no pattern names it."""
    if principal is None:
        named = ANYONE in rule.principals
    else:
        named = any(principal_matches(p, principal) for p in rule.principals)
    return named or bool(set(groups) & set(rule.user_groups))


def decide(
    rules: Sequence[AccessRule],
    enforced: bool,
    principal: str | None,
    groups: Sequence[str] = (),
    *,
    groups_known: bool = True,
) -> Decision:
    """May the caller with SPIFFE `principal` (and token `groups`) invoke the agent these rules guard?

    `principal` is None for a caller known only by a verified user token. With
    `groups_known=False` (a caller that carries no user token we can verify) a DENY that names
    user groups cannot be ruled out, so it denies: failing closed.
    """
    if not enforced:
        return Decision(True, None, "no AccessPolicy targets this agent")
    who = principal if principal is not None else f"groups {','.join(groups) or '(none)'}"
    for rule in rules:
        if rule.action != "DENY":
            continue
        if matches(rule, principal, groups):
            return Decision(False, rule.policy, f"AccessPolicy {rule.policy} denies {who}")
        if rule.user_groups and not groups_known:
            return Decision(False, rule.policy, f"{rule.policy} names user groups, which cannot be verified")
    for rule in rules:
        if rule.action == "ALLOW" and matches(rule, principal, groups):
            return Decision(True, rule.policy, f"AccessPolicy {rule.policy} allows {who}")
    return Decision(False, None, f"no AccessPolicy allows {who}")
