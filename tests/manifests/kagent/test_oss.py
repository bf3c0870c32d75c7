"""AccessPolicies as ztunnel AuthorizationPolicies for kagent OSS: valid Istio, selecting the pods
kagent creates, and deciding every caller as the AccessPolicy does (the embedded ztunnel's
`authorize` against `access.decide`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.manifests.kagent import DEPLOY, MODEL, agent, documents, policy, write
from trustusbank.cli.manifests_cmd import app
from trustusbank.manifests.bundle import Bundle, check_bundle, load_bundle
from trustusbank.manifests.core import Deployment
from trustusbank.manifests.istio.objects import AuthorizationPolicy, Connection, Workload
from trustusbank.manifests.kagent.access import decide, rules_for
from trustusbank.manifests.kagent.controller import expand
from trustusbank.manifests.kagent.objects import AGENT_PORT, Index, principal
from trustusbank.manifests.kagent.oss import (
    GENERATED_FROM,
    SCRAPERS,
    authorization_policies,
    user_group_subjects,
)
from trustusbank.manifests.kinds import KINDS
from trustusbank.mesh.authz.evaluate import authorize
from trustusbank.mesh.identity.spiffe import SpiffeId

AGENTS_NS = "trustusbank-bank-agents"
[SCRAPER] = SCRAPERS
VALIDATE = KINDS[("security.istio.io/v1", "AuthorizationPolicy")].validate
runner = CliRunner()


def identity(principal_: str) -> SpiffeId:
    trust_domain, _, namespace, _, service_account = principal_.split("/")
    return SpiffeId(trust_domain, namespace, service_account)


def pods(objects: list[Any]) -> dict[tuple[str, str], dict[str, str]]:
    """Pod labels of every Deployment, kagent's agents included (as its controller creates them)."""
    expanded = expand(Bundle(objects)).objects
    return {
        (d.namespace, d.name): d.pod_labels
        for d in (Deployment.from_manifest(m) for m in expanded if m.kind == "Deployment")
    }


def as_policies(docs: list[dict[str, Any]]) -> list[AuthorizationPolicy]:
    return [
        AuthorizationPolicy.from_spec(d["metadata"]["name"], d["metadata"]["namespace"], d["spec"])
        for d in docs
    ]


def l4_allows(
    policies: list[AuthorizationPolicy],
    namespace: str,
    agent_: str,
    labels: dict[str, str],
    caller: str | None,
) -> bool:
    conn = Connection(identity(caller) if caller else None, "10.1.0.7", "10.1.0.9", AGENT_PORT)
    return authorize(conn, Workload(agent_, namespace, labels), policies).allowed


def access_allows(index: Index, namespace: str, agent_: str, caller: str) -> bool:
    rules, enforced = rules_for(index.access_policies, namespace, agent_)
    return decide(rules, enforced, caller, groups_known=False).allowed


# --- deploy/ ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deploy() -> Bundle:
    return load_bundle(DEPLOY)


def deploy_callers(bundle: Bundle) -> list[str]:
    """Every identity a workload of deploy/ runs as (kagent's agents and the waypoint included),
    plus an outsider."""
    return sorted(
        {principal(d.namespace, d.service_account) for d in bundle.deployments()}
        | {a.principal for a in Index.of(bundle.objects).agents.values()}
        | {principal("trustusbank-platform", "trustusbank-agentgw"), principal("default", "intruder")}
    )


def test_deploy_renders_one_deny_per_agent_admitting_its_callers_and_the_scraper(deploy: Bundle) -> None:
    docs = authorization_policies(Index.of(deploy.objects))

    admitted = {
        d["metadata"]["name"]: d["spec"]["rules"][0]["from"][0]["source"]["notPrincipals"] for d in docs
    }
    assert admitted == {
        "kagent-access-fraud-bot": [principal(AGENTS_NS, "support-bot"), SCRAPER],
        "kagent-access-support-bot": [principal("trustusbank-bank-frontend", "chatbot"), SCRAPER],
        "kagent-access-triage-bot": [principal(AGENTS_NS, "fraud-bot"), SCRAPER],
    }
    [triage] = [d for d in docs if d["metadata"]["name"] == "kagent-access-triage-bot"]
    assert triage["metadata"]["labels"][GENERATED_FROM] == "AccessPolicy"
    assert triage["metadata"]["annotations"][GENERATED_FROM] == (
        f"AccessPolicy/{AGENTS_NS}/deny-all-agents,AccessPolicy/{AGENTS_NS}/triage-bot-callers"
    )
    assert (triage["spec"]["action"], len(triage["spec"]["rules"])) == ("DENY", 1)


def test_each_selector_picks_exactly_its_agents_pod_as_kagent_creates_it(deploy: Bundle) -> None:
    docs = authorization_policies(Index.of(deploy.objects))
    labels = pods(deploy.objects)

    for policy_ in as_policies(docs):
        assert policy_.selector is not None
        picked = [key for key, pod in labels.items() if policy_.selector.selects(pod) and key[0] == AGENTS_NS]
        assert picked == [(AGENTS_NS, policy_.name.removeprefix("kagent-access-"))]


def test_l4_decides_every_deploy_caller_of_every_agent_as_the_access_policy(deploy: Bundle) -> None:
    index = Index.of(deploy.objects)
    generated = as_policies(authorization_policies(index))
    defence = AuthorizationPolicy.all_in(deploy.objects)
    labels = pods(deploy.objects)
    callers = deploy_callers(deploy)
    assert len(callers) >= 12  # every workload's identity, not a token few

    table = []
    for namespace, name in sorted(index.agents):
        pod = labels[(namespace, name)]
        for caller in callers:
            if caller == SCRAPER:
                continue
            expected = access_allows(index, namespace, name, caller)
            alone = l4_allows(generated, namespace, name, pod, caller)
            # Composed with 08-defence: never wider than either (the defence set admits all of these).
            composed = l4_allows([*generated, *defence], namespace, name, pod, caller)
            table.append((name, caller, expected, alone, composed))
    assert [row for row in table if not row[2] == row[3] == row[4]] == []
    assert sorted((name, caller) for name, caller, allowed, _, _ in table if allowed) == [
        ("fraud-bot", principal(AGENTS_NS, "support-bot")),
        ("support-bot", principal("trustusbank-bank-frontend", "chatbot")),
        ("triage-bot", principal(AGENTS_NS, "fraud-bot")),
    ]


def test_the_scraper_still_reaches_every_agent_and_plaintext_reaches_none(deploy: Bundle) -> None:
    index = Index.of(deploy.objects)
    generated = as_policies(authorization_policies(index))
    defence = AuthorizationPolicy.all_in(deploy.objects)
    labels = pods(deploy.objects)

    for key in sorted(index.agents):
        assert l4_allows([*generated, *defence], *key, labels[key], SCRAPER)
        assert not l4_allows(generated, *key, labels[key], None)


# --- every shape of AccessPolicy -------------------------------------------------------------

A, B, C = (principal("bank", n) for n in "abc")
CHATBOT = principal("frontend", "chatbot")
OTHER = principal("other", "x")
CALLERS = (A, B, C, CHATBOT, OTHER, principal("other", "y"))
TOOL = "- type: Agent\n  agent:\n    name: {name}"
SA = '- kind: ServiceAccount\n  name: "{name}"\n  namespace: {ns}'
GROUP = "- kind: UserGroup\n  name: tellers"

CASES = {
    "deny one caller, others open": [policy("no-a", "b", "- kind: Agent\n  name: a", action="DENY")],
    "baseline and one grant": [
        policy("deny-all", "*", action="DENY"),
        policy("b-callers", "b", "- kind: Agent\n  name: a"),
    ],
    "grant for every agent plus one": [
        policy("chatbot-all", "*", SA.format(name="chatbot", ns="frontend")),
        policy("b-callers", "b", "- kind: Agent\n  name: c"),
    ],
    "deny wins over grant": [
        policy("b-callers", "b", "- kind: Agent\n  name: a\n- kind: Agent\n  name: c"),
        policy("no-a", "*", "- kind: Agent\n  name: a", action="DENY"),
    ],
    "service accounts of other namespaces": [
        policy(
            "others", "c", SA.format(name="x", ns="other") + "\n" + SA.format(name="chatbot", ns="frontend")
        )
    ],
    "baseline alone": [policy("deny-all", "*", action="DENY")],
    "subject-less ALLOW": [policy("closed", "a")],
    "group grant admits nobody by group": [policy("b-callers", "b", f"- kind: Agent\n  name: a\n{GROUP}")],
    "group deny denies everyone": [
        policy("b-callers", "b", "- kind: Agent\n  name: a"),
        policy("no-tellers", "b", GROUP, action="DENY"),
    ],
}


def identities() -> list[str]:
    """The namespaces and ServiceAccounts the subjects name (the bundle check wants them declared)."""
    spaces = ("frontend", "other", "trustusbank-observability")
    accounts = (
        ("frontend", "chatbot"),
        ("other", "x"),
        ("other", "y"),
        ("trustusbank-observability", "alert-evaluator"),
    )
    return [f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n" for n in spaces] + [
        f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {n}\n  namespace: {ns}\n"
        for ns, n in accounts
    ]


def bundle_of(tmp_path: Path, policies: list[str]) -> list[Any]:
    agents = (agent("a", TOOL.format(name="b")), agent("b", TOOL.format(name="c")), agent("c"))
    report = check_bundle(write(tmp_path, documents(MODEL, *identities(), *agents, *policies)).parent)
    assert report.problems == []
    return report.objects


@pytest.mark.parametrize("case", sorted(CASES))
def test_l4_decides_every_caller_as_the_access_policy(tmp_path: Path, case: str) -> None:
    objects = bundle_of(tmp_path, CASES[case])
    index = Index.of(objects)
    docs = authorization_policies(index)
    generated = as_policies(docs)
    labels = pods(objects)

    assert [e for d in docs for e in VALIDATE(d)] == []
    rows = [
        (
            name,
            caller,
            access_allows(index, "bank", name, caller),
            l4_allows(generated, "bank", name, pod, caller),
        )
        for (_, name), pod in sorted(labels.items())
        for caller in CALLERS
    ]
    assert [row for row in rows if row[2] != row[3]] == []
    assert any(row[2] for row in rows) or case in ("baseline alone", "group deny denies everyone")
    assert any(not row[2] for row in rows)


def test_only_a_deny_naming_the_scraper_keeps_it_out(tmp_path: Path) -> None:
    scraper = SA.format(name="alert-evaluator", ns="trustusbank-observability")
    objects = bundle_of(
        tmp_path, [*CASES["group deny denies everyone"], policy("no-scrape", "a", scraper, "DENY")]
    )
    generated = as_policies(authorization_policies(Index.of(objects)))
    labels = pods(objects)

    assert not l4_allows(generated, "bank", "a", labels[("bank", "a")], SCRAPER)
    assert l4_allows(generated, "bank", "b", labels[("bank", "b")], SCRAPER)
    assert l4_allows(generated, "bank", "c", labels[("bank", "c")], SCRAPER)  # not under policy at all


def test_an_agent_no_policy_targets_gets_no_policy(tmp_path: Path) -> None:
    index = Index.of(bundle_of(tmp_path, CASES["deny one caller, others open"]))

    assert [d["metadata"]["name"] for d in authorization_policies(index)] == ["kagent-access-b"]


def test_without_scrapers_a_deny_all_denies_every_caller(tmp_path: Path) -> None:
    index = Index.of(bundle_of(tmp_path, CASES["baseline alone"]))

    docs = authorization_policies(index, scrapers=())

    assert {d["metadata"]["name"]: d["spec"]["rules"] for d in docs} == {
        f"kagent-access-{n}": [{}] for n in "abc"
    }
    assert [e for d in docs for e in VALIDATE(d)] == []


def test_user_group_subjects_are_named(tmp_path: Path) -> None:
    index = Index.of(bundle_of(tmp_path, CASES["group deny denies everyone"]))

    assert [(p.ref, s.name) for p, s in user_group_subjects(index)] == [("bank/no-tellers", "tellers")]


# --- the command -----------------------------------------------------------------------------


def test_the_command_prints_what_the_generator_renders(deploy: Bundle) -> None:
    result = runner.invoke(app, ["oss-access", str(DEPLOY)])

    assert result.exit_code == 0, result.output
    assert list(yaml.safe_load_all(result.stdout)) == authorization_policies(Index.of(deploy.objects))


def test_the_command_warns_of_user_groups_and_takes_other_scrapers(tmp_path: Path) -> None:
    bundle_of(tmp_path, CASES["group deny denies everyone"])
    prometheus = principal("monitoring", "prometheus")

    result = runner.invoke(app, ["oss-access", str(tmp_path), "--scraper", prometheus])

    assert result.exit_code == 0, result.output
    assert "AccessPolicy bank/no-tellers: group tellers cannot be enforced on kagent OSS" in result.stderr
    [doc] = yaml.safe_load_all(result.stdout)
    assert doc["spec"]["rules"] == [{"from": [{"source": {"notPrincipals": [prometheus]}}]}]


def test_the_command_refuses_a_broken_bundle(tmp_path: Path) -> None:
    path = write(tmp_path, documents(MODEL, agent("a").replace("modelConfig", "modelConfg")))

    result = runner.invoke(app, ["oss-access", str(path.parent)])

    assert (result.exit_code, result.stdout) == (1, "")
    assert "modelConfg" in result.stderr
