"""What kagent's controller derives from deploy/07-agents: each agent's spec, and the objects it creates."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.manifests.kagent import AGENTS_DIR, DEPLOY, MODEL, NS, agent, documents, line_of, write
from trustusbank.manifests.bundle import CHECKS, Bundle, check_bundle, load_bundle
from trustusbank.manifests.core import Deployment
from trustusbank.manifests.kagent.access import decide
from trustusbank.manifests.kagent.controller import AGENT_COMMAND, AGENT_IMAGE, agent_spec, expand
from trustusbank.manifests.kagent.objects import principal
from trustusbank.manifests.kagent.spec import (
    SPEC_ENV,
    AccessRule,
    AgentSpec,
    McpServerSpec,
    ModelSpec,
    SubAgentSpec,
)
from trustusbank.manifests.kinds import KINDS
from trustusbank.manifests.manifest import ManifestError

GATEWAY = "http://trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080"
CHATBOT = principal("trustusbank-bank-frontend", "chatbot")
AGENTS = ("support-bot", "fraud-bot", "triage-bot")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(DEPLOY)


def agent_doc(name: str) -> dict[str, Any]:
    """The Agent document as written in deploy/07-agents/<name>.yaml."""
    [doc] = [d for d in yaml.safe_load_all((AGENTS_DIR / f"{name}.yaml").read_text()) if d["kind"] == "Agent"]
    return dict(doc)


def description(name: str) -> str:
    return str(agent_doc(name)["spec"]["description"])


def deployment_of(bundle: Bundle, name: str) -> Deployment:
    view = bundle.view("Deployment", NS, name)
    assert isinstance(view, Deployment)
    return view


def server(name: str, path: str, *tools: str) -> McpServerSpec:
    return McpServerSpec(name=name, url=f"{GATEWAY}/mcp/{path}", tool_names=tools, timeout_seconds=30.0)


def sub_agent(name: str) -> SubAgentSpec:
    url = f"http://{name}.{NS}.svc.cluster.local:8080"
    return SubAgentSpec(name=name, namespace=NS, url=url, description=description(name))


# Who may call an agent from the console, by the signed-in person's groups (access-policies.yaml).
CONSOLE_GROUPS = {"support-bot": ("admins",), "fraud-bot": ("admins",)}
EXPECTED = {
    "support-bot": (
        (
            server("account-mcp", "account", "get_balance", "get_profile"),
            server("transaction-mcp", "transaction", "list_recent"),
            server("currency-converter", "currency", "convert_currency"),
        ),
        ("fraud-bot",),
        CHATBOT,
    ),
    "fraud-bot": (
        (
            server("transaction-mcp", "transaction", "list_recent", "get_details", "flag_suspicious"),
            server("account-mcp", "account", "get_profile"),
        ),
        ("triage-bot",),
        principal(NS, "support-bot"),
    ),
    "triage-bot": (
        (server("ticket-mcp", "ticket", "create_ticket", "notify_human"),),
        (),
        principal(NS, "fraud-bot"),
    ),
}


@pytest.mark.parametrize("name", AGENTS)
def test_agent_spec_of_each_deployed_agent(bundle: Bundle, name: str) -> None:
    servers, subs, caller = EXPECTED[name]
    groups = CONSOLE_GROUPS.get(name, ())
    doc = agent_doc(name)

    spec = agent_spec(bundle, NS, name)

    assert (spec.name, spec.namespace, spec.ref) == (name, NS, f"{NS}/{name}")
    assert spec.description == description(name) != ""
    assert spec.system_message == doc["spec"]["declarative"]["systemMessage"]
    assert spec.model == ModelSpec(
        config=f"{NS}/scripted",
        provider="openai",
        model="trustusbank-scripted",
        base_url=f"http://scripted-model.{NS}.svc.cluster.local:8080/v1",
        api_key_secret="scripted-model-key",  # a placeholder: kagent's OpenAI client needs some key
        api_key_secret_key="OPENAI_API_KEY",
    )
    assert spec.mcp_servers == servers
    assert spec.sub_agents == tuple(sub_agent(s) for s in subs)
    assert spec.access_enforced
    assert spec.access == (
        AccessRule(policy=f"{NS}/deny-all-agents", action="DENY", principals=()),
        AccessRule(policy=f"{NS}/{name}-callers", action="ALLOW", principals=(caller,), user_groups=groups),
    )
    assert AgentSpec.from_json(spec.to_json()) == spec


def test_the_policies_allow_exactly_the_delegation_chain(bundle: Bundle) -> None:
    specs = {name: agent_spec(bundle, NS, name) for name in AGENTS}
    callers = [CHATBOT, *(principal(NS, name) for name in AGENTS), principal(NS, "scripted-model")]

    allowed = {
        (caller, name)
        for name, spec in specs.items()
        for caller in callers
        if decide(spec.access, spec.access_enforced, caller).allowed
    }

    chain = {(CHATBOT, "support-bot")} | {
        (principal(NS, caller), sub.name) for caller, spec in specs.items() for sub in spec.sub_agents
    }
    assert chain == {
        (CHATBOT, "support-bot"),
        (principal(NS, "support-bot"), "fraud-bot"),
        (principal(NS, "fraud-bot"), "triage-bot"),
    }
    assert allowed == chain


def test_expand_creates_what_kagent_creates_for_each_agent(bundle: Bundle) -> None:
    expanded = expand(bundle)

    for name in AGENTS:
        deployment = deployment_of(expanded, name)
        [container] = deployment.containers
        assert deployment.service_account == name
        assert (container.image, container.command) == (AGENT_IMAGE, list(AGENT_COMMAND))
        assert AgentSpec.from_json(container.env[SPEC_ENV]) == agent_spec(bundle, NS, name)
        assert [(p.name, p.container_port) for p in container.ports] == [("http", 8080)]
        assert deployment.pod_labels["kagent"] == deployment.pod_labels["app.kubernetes.io/name"] == name
        pod = deployment.manifest.body["spec"]["template"]["spec"]
        assert pod["containers"][0]["readinessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080}}
        [service] = expanded.service_for(deployment)
        assert (service.name, [(p.port, p.target_port) for p in service.ports]) == (name, [(8080, 8080)])
        # Errors about the generated objects point at the Agent that caused them.
        declared = bundle.get("Agent", NS, name)
        assert declared is not None
        assert deployment.manifest.source == declared.source
    assert len(expanded.objects) == len(bundle.objects) + 2 * len(AGENTS), "the agents' ServiceAccounts exist"


def test_the_expanded_bundle_passes_every_check_and_schema(bundle: Bundle) -> None:
    expanded = expand(bundle)

    assert [str(p) for check in CHECKS for p in check(expanded)] == []
    for manifest in expanded.objects[len(bundle.objects) :]:
        assert KINDS[(manifest.api_version, manifest.kind)].validate(manifest.body) == [], manifest.ref


def test_expand_is_idempotent_and_leaves_bundles_without_agents_alone(bundle: Bundle, tmp_path: Path) -> None:
    def shape(b: Bundle) -> list[tuple[str, str | None, str, str]]:
        return [(m.kind, m.namespace, m.name, json.dumps(m.body, sort_keys=True)) for m in b.objects]

    once = expand(bundle)
    assert shape(expand(once)) == shape(once)

    write(tmp_path, MODEL)
    plain = load_bundle(tmp_path)
    assert expand(plain) is plain


def test_expand_creates_a_missing_service_account(tmp_path: Path) -> None:
    write(tmp_path, documents(MODEL, agent("a")))

    expanded = expand(load_bundle(tmp_path))

    account = expanded.get("ServiceAccount", "bank", "a")
    assert account is not None
    assert account.labels["app.kubernetes.io/managed-by"] == "kagent"
    assert [str(p) for check in CHECKS for p in check(expanded)] == []


def test_expand_refuses_a_deployment_kagent_would_own(tmp_path: Path) -> None:
    clash = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  namespace: bank\nspec:\n"
        "  selector:\n    matchLabels: {app: a}\n  template:\n    metadata:\n      labels: {app: a}\n"
        "    spec:\n      containers:\n        - name: x\n          command: [trustusbank, serve, fx-api]\n"
    )
    path = write(tmp_path, documents(MODEL, agent("a"), clash))

    with pytest.raises(ManifestError) as raised:
        expand(load_bundle(tmp_path))

    assert str(raised.value) == (
        f"{path}:{line_of(path, 'name: a')}: Agent bank/a: kagent creates Deployment bank/a for this Agent; "
        f"one is declared at {path}:{line_of(path, 'apiVersion: apps/v1')}"
    )


def test_agent_spec_says_what_cannot_be_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, documents(MODEL, agent("a", model="gone")))
    unchecked = Bundle(check_bundle(tmp_path).objects)

    with pytest.raises(ValueError, match="no Agent bank/b in the bundle"):
        agent_spec(unchecked, "bank", "b")
    with pytest.raises(ManifestError) as raised:
        agent_spec(unchecked, "bank", "a")
    line = line_of(path, "modelConfig: gone")
    assert (
        str(raised.value) == f"{path}:{line}: Agent bank/a: modelConfig 'gone' names no ModelConfig in 'bank'"
    )


def test_switching_an_agent_to_the_anthropic_model_config(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy)
    support = deploy / "07-agents" / "support-bot.yaml"
    support.write_text(support.read_text().replace("modelConfig: scripted", "modelConfig: anthropic-haiku"))
    key = secrets.token_hex(8)
    (deploy / "07-agents" / "anthropic-key.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: kagent-anthropic\n  namespace: {NS}\n"
        f"stringData:\n  ANTHROPIC_API_KEY: {key}\n"
    )
    switched = load_bundle(deploy)

    assert agent_spec(switched, NS, "support-bot").model == ModelSpec(
        config=f"{NS}/anthropic-haiku",
        provider="anthropic",
        model="claude-haiku-4-5",
        api_key_secret="kagent-anthropic",
        api_key_secret_key="ANTHROPIC_API_KEY",
        max_tokens=2048,
        temperature=0.2,
    )
    expanded = expand(switched)
    env = {name: deployment_of(expanded, name).containers[0].env for name in AGENTS}
    assert env["support-bot"]["ANTHROPIC_API_KEY"] == key
    assert "ANTHROPIC_API_KEY" not in env["fraud-bot"]
    assert key not in env["support-bot"][SPEC_ENV], "the key travels in its own variable, not in the spec"
