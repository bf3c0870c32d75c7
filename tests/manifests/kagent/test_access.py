"""AccessPolicy -> AccessRule, and the decision the rules make for one caller.

Semantics (see trustusbank.manifests.kagent.access): an Agent subject is the ServiceAccount
named after it; a DENY naming the caller wins; an ALLOW is an allowlist; a policy with no
subjects names nobody but puts its targets under an allowlist (the deny-all baseline with
target "*"); an agent targeted only by DENYs stays open to everyone else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trustusbank.manifests.kagent.access import DEFAULT_ALLOW, decide, rule_of, rules_for
from trustusbank.manifests.kagent.objects import AccessPolicy, principal
from trustusbank.manifests.kagent.spec import AccessRule
from trustusbank.manifests.manifest import Manifest, Source

FRONTEND_CHATBOT = "cluster.local/ns/frontend/sa/chatbot"
SUPPORT = "cluster.local/ns/bank/sa/support-bot"
TRIAGE = "cluster.local/ns/bank/sa/triage-bot"


def access_policy(text: str, namespace: str = "bank") -> AccessPolicy:
    body = yaml.safe_load(text)
    manifest = Manifest(
        api_version="policy.kagent-enterprise.solo.io/v1alpha1",
        kind="AccessPolicy",
        name=body["metadata"]["name"],
        namespace=namespace,
        labels={},
        annotations={},
        body=body,
        source=Source(Path("p.yaml"), 1),
    )
    return AccessPolicy.from_manifest(manifest)


def allow(name: str, target: str, *subjects: str, action: str = "ALLOW") -> AccessPolicy:
    listed = "".join(f"\n      - {s}" for s in subjects) if subjects else " []"
    return access_policy(
        f"metadata: {{name: {name}}}\nspec:\n  action: {action}\n"
        f"  targetRef: {{kind: Agent, name: '{target}'}}\n  from:\n    subjects:{listed}\n"
    )


def deny(name: str, target: str, *subjects: str) -> AccessPolicy:
    return allow(name, target, *subjects, action="DENY")


def test_each_subject_kind_becomes_principals_or_groups() -> None:
    policy = allow(
        "callers",
        "fraud-bot",
        "{kind: ServiceAccount, name: chatbot, namespace: frontend}",
        "{kind: Agent, name: support-bot, namespace: bank}",
        "{kind: Agent, name: triage-bot}",  # no namespace: the policy's own
        "{kind: UserGroup, name: fraud-analysts}",
    )

    assert rule_of(policy) == AccessRule(
        policy="bank/callers",
        action="ALLOW",
        principals=(FRONTEND_CHATBOT, SUPPORT, TRIAGE),
        user_groups=("fraud-analysts",),
    )
    assert principal("bank", "support-bot") == SUPPORT


def test_an_agent_no_policy_targets_is_open() -> None:
    rules, enforced = rules_for(
        [allow("p", "other", "{kind: Agent, name: support-bot}")], "bank", "fraud-bot"
    )

    assert (rules, enforced) == ((), False)
    assert decide(rules, enforced, TRIAGE).allowed


def test_the_deny_all_baseline_names_nobody_and_denies_everyone() -> None:
    baseline = deny("deny-all", "*")
    rules, enforced = rules_for([baseline], "bank", "fraud-bot")

    assert enforced
    assert rules == (AccessRule(policy="bank/deny-all", action="DENY", principals=(), user_groups=()),)
    for caller in (SUPPORT, TRIAGE, FRONTEND_CHATBOT, "*"):
        decision = decide(rules, enforced, caller)
        assert (decision.allowed, decision.policy) == (False, None)


def test_the_baseline_covers_only_its_own_namespace() -> None:
    assert rules_for([deny("deny-all", "*")], "elsewhere", "fraud-bot") == ((), False)


def test_an_allow_under_the_baseline_admits_exactly_its_subjects() -> None:
    policies = [
        deny("deny-all", "*"),
        allow("fraud-callers", "fraud-bot", "{kind: Agent, name: support-bot}"),
    ]
    rules, enforced = rules_for(policies, "bank", "fraud-bot")

    assert decide(rules, enforced, SUPPORT).policy == "bank/fraud-callers"
    assert decide(rules, enforced, SUPPORT).allowed
    assert not decide(rules, enforced, TRIAGE).allowed


def test_an_allow_alone_is_an_allowlist() -> None:
    rules, enforced = rules_for(
        [allow("p", "fraud-bot", "{kind: Agent, name: triage-bot}")], "bank", "fraud-bot"
    )

    assert decide(rules, enforced, TRIAGE).allowed
    assert not decide(rules, enforced, SUPPORT).allowed


def test_deny_overrides_allow() -> None:
    policies = [
        allow("a", "fraud-bot", "{kind: Agent, name: support-bot}", "{kind: Agent, name: triage-bot}"),
        deny("d", "fraud-bot", "{kind: Agent, name: support-bot}"),
    ]
    rules, enforced = rules_for(policies, "bank", "fraud-bot")

    decision = decide(rules, enforced, SUPPORT)
    assert (decision.allowed, decision.policy) == (False, "bank/d")
    assert decide(rules, enforced, TRIAGE).allowed


def test_an_agent_targeted_only_by_denies_stays_open_to_everyone_else() -> None:
    rules, enforced = rules_for(
        [deny("d", "fraud-bot", "{kind: Agent, name: support-bot}")], "bank", "fraud-bot"
    )

    assert enforced
    assert rules[-1] == AccessRule(policy=f"bank/{DEFAULT_ALLOW}", action="ALLOW", principals=("*",))
    assert not decide(rules, enforced, SUPPORT).allowed
    assert decide(rules, enforced, TRIAGE).allowed


def test_a_subjectless_allow_for_one_agent_closes_it() -> None:
    rules, enforced = rules_for([allow("nobody", "fraud-bot")], "bank", "fraud-bot")

    assert enforced
    assert rules == (AccessRule(policy="bank/nobody", action="ALLOW", principals=(), user_groups=()),)
    assert not decide(rules, enforced, SUPPORT).allowed


@pytest.mark.parametrize(
    ("groups", "allowed"), [(("fraud-analysts",), True), (("tellers",), False), ((), False)]
)
def test_user_groups_match_the_callers_groups(groups: tuple[str, ...], allowed: bool) -> None:
    rules, enforced = rules_for(
        [allow("p", "fraud-bot", "{kind: UserGroup, name: fraud-analysts}")], "bank", "fraud-bot"
    )

    assert decide(rules, enforced, FRONTEND_CHATBOT, groups).allowed is allowed
