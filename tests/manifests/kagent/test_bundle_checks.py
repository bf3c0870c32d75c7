"""The kagent cross-object checks: what kagent's controller would refuse, at the line that names it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.manifests.kagent import DEPLOY, MODEL, SERVER, agent, documents, line_of, policy, write
from trustusbank.manifests.bundle import check_bundle

MCP_TOOL = (
    "- type: McpServer\n  mcpServer:\n    apiGroup: kagent.dev\n    kind: RemoteMCPServer\n    name: {name}"
)
AGENT_TOOL = "- type: Agent\n  agent:\n    name: {name}"


def problems(path: Path) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in check_bundle(path.parent).problems]


def test_a_complete_graph_checks_clean_without_declaring_the_agents_service_accounts(tmp_path: Path) -> None:
    # kagent creates the ServiceAccount an Agent runs as, so none is declared here.
    path = write(
        tmp_path,
        documents(
            MODEL,
            SERVER,
            agent("a", MCP_TOOL.format(name="tools") + "\n" + AGENT_TOOL.format(name="b")),
            agent("b"),
            policy("deny-all", "*"),
            policy("b-callers", "b", "- kind: Agent\n  name: a\n  namespace: bank"),
            # An agent's ServiceAccount may be named as such: kagent creates it.
            policy("a-callers", "a", "- kind: ServiceAccount\n  name: b\n  namespace: bank"),
        ),
    )

    assert problems(path) == []


def test_model_config_must_exist_in_the_agents_namespace(tmp_path: Path) -> None:
    path = write(tmp_path, documents(MODEL, agent("a", model="scriptd")))

    assert problems(path) == [
        (
            line_of(path, "modelConfig: scriptd"),
            "Agent bank/a: modelConfig 'scriptd' names no ModelConfig in 'bank'",
        )
    ]


def test_an_agent_without_model_config_uses_kagents_default(tmp_path: Path) -> None:
    path = write(tmp_path, agent("a").replace("    modelConfig: scripted\n", ""))

    assert problems(path) == [
        (
            line_of(path, "declarative:"),
            "Agent bank/a: modelConfig 'default-model-config' names no ModelConfig in 'bank'",
        )
    ]


def test_tool_references_must_name_existing_objects(tmp_path: Path) -> None:
    tools = MCP_TOOL.format(name="tols") + "\n" + AGENT_TOOL.format(name="c")
    path = write(tmp_path, documents(MODEL, SERVER, agent("a", tools)))

    assert problems(path) == [
        (line_of(path, "name: tols"), "Agent bank/a: RemoteMCPServer bank/tols is not in the bundle"),
        (line_of(path, "name: c"), "Agent bank/a: Agent bank/c is not in the bundle"),
    ]


def test_an_agent_cannot_call_itself_or_a_cycle(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        documents(
            MODEL,
            agent("a", AGENT_TOOL.format(name="a")),
            agent("b", AGENT_TOOL.format(name="c")),
            agent("c", AGENT_TOOL.format(name="b")),
        ),
    )

    assert problems(path) == [
        (
            line_of(path, "- type: Agent", 1) + 1,
            "Agent bank/a: agent tool cannot be used to reference itself",
        ),
        (
            line_of(path, "- type: Agent", 2),
            "Agent bank/b: cycle detected in agent tool chain: bank/b -> bank/c -> bank/b",
        ),
    ]


def test_cross_namespace_references_need_the_targets_consent(tmp_path: Path) -> None:
    other = SERVER.replace("namespace: bank", "namespace: tools-ns")
    tool = MCP_TOOL.format(name="tools") + "\n    namespace: tools-ns"
    path = write(
        tmp_path,
        documents(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools-ns\n", MODEL, other, agent("a", tool)
        ),
    )

    assert problems(path) == [
        (
            line_of(path, "mcpServer:"),
            "Agent bank/a: RemoteMCPServer tools-ns/tools does not admit references from namespace 'bank' "
            "(set its spec.allowedNamespaces)",
        )
    ]
    path.write_text(
        path.read_text().replace("  url: http://gw", "  allowedNamespaces:\n    from: All\n  url: http://gw")
    )
    assert problems(path) == []


def test_system_message_from_a_config_map(tmp_path: Path) -> None:
    config_map = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: prompts\n  namespace: bank\ndata:\n  a: Hi.\n"
    )
    text = agent("a").replace(
        "    systemMessage: You are a.", "    systemMessageFrom: {type: ConfigMap, name: prompts, key: b}"
    )
    path = write(tmp_path, documents(MODEL, config_map, text))

    assert problems(path) == [
        (
            line_of(path, "systemMessageFrom:"),
            "Agent bank/a: systemMessageFrom: ConfigMap bank/prompts is not in the bundle or has no key 'b'",
        )
    ]
    path.write_text(path.read_text().replace("key: b}", "key: a}"))
    assert problems(path) == []


def test_a_model_key_secret_without_the_key_fails_the_agent(tmp_path: Path) -> None:
    model = MODEL + "  apiKeySecret: model-key\n  apiKeySecretKey: OPENAI_API_KEY\n"
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: model-key\n  namespace: bank\n"
        "stringData:\n  KEY: x\n"
    )
    path = write(tmp_path, documents(model, agent("a")))

    assert problems(path) == [], "an absent Secret is not an error: the key may come from elsewhere"
    path.write_text(documents(model, secret, agent("a")))
    assert problems(path) == [
        (
            line_of(path, "apiKeySecretKey:"),
            "ModelConfig bank/scripted: apiKeySecretKey 'OPENAI_API_KEY' is not a key of Secret "
            "bank/model-key",
        )
    ]


def test_access_policy_target_and_subjects_must_exist(tmp_path: Path) -> None:
    subjects = (
        "- kind: Agent\n  name: ghost\n  namespace: bank\n"
        "- kind: ServiceAccount\n  name: nobody\n  namespace: bank\n"
        "- kind: UserGroup\n  name: admins"
    )
    path = write(tmp_path, documents(MODEL, agent("a"), policy("p", "b", subjects), policy("all", "*")))

    assert problems(path) == [
        (
            line_of(path, 'name: "b"'),
            "AccessPolicy bank/p: targetRef names Agent 'b', which is not in 'bank'",
        ),
        (
            line_of(path, "- kind: Agent"),
            "AccessPolicy bank/p: subject Agent bank/ghost is not in the bundle",
        ),
        (
            line_of(path, "- kind: ServiceAccount"),
            "AccessPolicy bank/p: subject ServiceAccount bank/nobody is not in the bundle",
        ),
    ]


def test_the_chatbot_proxy_reaches_only_agents(tmp_path: Path) -> None:
    """deploy/ as shipped checks clean; an MCP server in the chatbot's agent list does not."""
    bundle = tmp_path / "deploy"
    shutil.copytree(DEPLOY, bundle)
    assert check_bundle(bundle).problems == []
    chatbot = bundle / "09-frontend" / "chatbot.yaml"
    text = chatbot.read_text()
    listed = "value: trustusbank-bank-agents/support-bot,"
    assert listed in text
    chatbot.write_text(
        text.replace(listed, "value: trustusbank-bank-mcp/account-mcp,").replace(
            "value: trustusbank-bank-agents/support-bot\n", "value: trustusbank-bank-agents/ghost-bot\n"
        )
    )

    assert [(p.line, p.message) for p in check_bundle(bundle).problems] == [
        (
            line_of(chatbot, "value: trustusbank-bank-agents/ghost-bot"),
            "Deployment trustusbank-bank-frontend/chatbot: TRUSTUSBANK_CHATBOT_AGENT names "
            "'trustusbank-bank-agents/ghost-bot', which is not an Agent of the bundle",
        ),
        (
            line_of(chatbot, "value: trustusbank-bank-mcp/account-mcp,"),
            "Deployment trustusbank-bank-frontend/chatbot: TRUSTUSBANK_CHATBOT_AGENTS names "
            "'trustusbank-bank-mcp/account-mcp', which is not an Agent of the bundle",
        ),
    ]
