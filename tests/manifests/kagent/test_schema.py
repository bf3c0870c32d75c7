"""Agent, ModelConfig, RemoteMCPServer, AccessPolicy and Secret as bundle kinds: per-document validation.

Field names are kagent's (go/api/v1alpha2); a misspelt field is an error at its line with a
suggestion, a real field the embedded runtime does not implement says so, and kagent's CEL
rules run as checks with kagent's messages.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.manifests.kagent import AGENTS_DIR, MODEL, SERVER, agent, documents, line_of, policy, write
from trustusbank.manifests.bundle import check_bundle, load_bundle
from trustusbank.manifests.kagent.objects import Index, duration_seconds
from trustusbank.manifests.kinds import known_kinds, to_manifest
from trustusbank.manifests.yaml_source import read_documents


def problems(path: Path) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in check_bundle(path.parent).problems]


def test_kinds_are_registered() -> None:
    kinds = known_kinds()

    for kind in ("Agent", "ModelConfig", "RemoteMCPServer"):
        assert f"{kind} (kagent.dev/v1alpha2)" in kinds
    assert "AccessPolicy (policy.kagent-enterprise.solo.io/v1alpha1)" in kinds
    assert "Secret (v1)" in kinds


@pytest.mark.parametrize("file", sorted(AGENTS_DIR.glob("*.yaml")), ids=lambda f: f.name)
def test_deployed_agent_manifests_validate(file: Path) -> None:
    docs, read_problems = read_documents(file)
    results = [to_manifest(d) for d in docs]

    assert read_problems == []
    assert [p for _, found in results for p in found] == []
    assert all(manifest is not None for manifest, _ in results)


@pytest.mark.parametrize(
    ("text", "wrong", "message"),
    [
        (
            agent("a").replace("systemMessage:", "systemMesage:"),
            "systemMesage:",
            "Agent a: spec.declarative.systemMesage: unknown field (did you mean 'systemMessage'?)",
        ),
        (
            MODEL.replace("baseUrl:", "baseURL:"),
            "baseURL:",
            "ModelConfig scripted: spec.openAI.baseURL: unknown field (did you mean 'baseUrl'?)",
        ),
        (
            SERVER + "  timout: 5s\n",
            "timout:",
            "RemoteMCPServer tools: spec.timout: unknown field (did you mean 'timeout'?)",
        ),
        (
            policy("p", "a", "- kind: Agent\n  nmae: b"),
            "nmae:",
            "AccessPolicy p: spec.from.subjects[0].nmae: unknown field (did you mean 'name'?)",
        ),
    ],
    ids=["agent", "model-config", "remote-mcp-server", "access-policy"],
)
def test_misspelt_fields_are_errors_at_their_line(
    tmp_path: Path, text: str, wrong: str, message: str
) -> None:
    path = write(tmp_path, text)

    assert (line_of(path, wrong), message) in problems(path)


def test_a_missing_required_field_is_reported_where_it_belongs(tmp_path: Path) -> None:
    path = write(tmp_path, SERVER.replace("  description: Tools.\n", ""))

    assert problems(path) == [
        (line_of(path, "spec:"), "RemoteMCPServer tools: spec: 'description' is a required property")
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            MODEL + "  tls:\n    disableVerify: true\n",
            "tls:",
            "ModelConfig scripted: spec.tls: not supported: kagent has this field, "
            "the embedded runtime does not implement it",
        ),
        (
            MODEL.replace("provider: OpenAI", "provider: Gemini").replace(
                "  openAI:\n    baseUrl: http://model.bank.svc.cluster.local:8080/v1\n", ""
            ),
            "provider:",
            "ModelConfig scripted: spec.provider: not supported: provider 'Gemini'; the embedded runtime "
            "speaks the OpenAI and Anthropic APIs (and Ollama through its OpenAI-compatible /v1)",
        ),
        (
            SERVER + "  protocol: SSE\n",
            "protocol:",
            "RemoteMCPServer tools: spec.protocol: not supported: the SSE protocol; the embedded agents "
            "speak streamable HTTP to MCP servers (protocol: STREAMABLE_HTTP)",
        ),
        (
            agent("a").replace("type: Declarative", "type: BYO"),
            "type: BYO",
            "Agent a: spec.type: not supported: BYO agents (the embedded runtime serves Declarative agents)",
        ),
        (
            policy("p", "a", "- kind: Agent\n  name: b").replace(
                "kind: Agent\n    name", "kind: MCPServer\n    name"
            ),
            "kind: MCPServer",
            "AccessPolicy p: spec.targetRef.kind: not supported: AccessPolicy on a kagent MCPServer (the "
            "embedded runtime has no kagent MCPServer; restrict MCP tools per caller with an "
            "AgentgatewayPolicy on the MCP backend)",
        ),
    ],
    ids=["model-tls", "provider", "sse", "byo", "mcpserver-policy"],
)
def test_real_fields_the_runtime_cannot_honour_are_errors(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = write(tmp_path, text)

    assert (line_of(path, where), message) in problems(path)


def test_a_tool_server_without_kind_is_a_kagent_mcpserver_not_a_remote_one(tmp_path: Path) -> None:
    path = write(tmp_path, agent("a", "- type: McpServer\n  mcpServer:\n    name: tools"))

    assert problems(path) == [
        (
            line_of(path, "mcpServer:"),
            "Agent a: spec.declarative.tools[0].mcpServer: mcpServer.kind is empty, which kagent reads as a "
            "kagent MCPServer (a server kagent runs), not a RemoteMCPServer; set apiGroup: kagent.dev and "
            "kind: RemoteMCPServer",
        )
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            MODEL.replace("provider: OpenAI", "provider: Anthropic"),
            "openAI:",
            "ModelConfig scripted: spec.openAI: provider.openAI must be nil if the provider is not OpenAI",
        ),
        (
            MODEL + "  apiKeySecret: key\n",
            "spec:",
            "ModelConfig scripted: spec: apiKeySecretKey must be set if apiKeySecret is set "
            "(except for Bedrock and SAPAICore providers)",
        ),
        (
            MODEL.replace("    baseUrl:", '    temperature: "warm"\n    baseUrl:'),
            "temperature:",
            "ModelConfig scripted: spec.openAI.temperature: must be a number, got 'warm'",
        ),
        (
            agent("a").replace(
                "    systemMessage:",
                "    systemMessageFrom: {type: ConfigMap, name: m, key: k}\n    systemMessage:",
            ),
            "declarative:",
            "Agent a: spec.declarative: systemMessage and systemMessageFrom are mutually exclusive",
        ),
        (
            agent("a", "- type: McpServer\n  agent:\n    name: b"),
            "- type: McpServer",
            "Agent a: spec.declarative.tools[0]: type.agent must be nil if the type is not Agent",
        ),
        (
            SERVER + "  timeout: 30 seconds\n",
            "timeout:",
            "RemoteMCPServer tools: spec.timeout: not a duration: '30 seconds' (use Go's form, e.g. 30s, "
            "1m30s, 500ms)",
        ),
        (
            SERVER.replace("url: http://", "url: ftp://"),
            "url:",
            "RemoteMCPServer tools: spec.url: must be an http:// or https:// URL, got "
            "'ftp://gw.bank.svc.cluster.local:8080/mcp/tools'",
        ),
    ],
    ids=["provider-block", "api-key-pair", "temperature", "system-message", "tool-type", "duration", "url"],
)
def test_kagent_rules(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write(tmp_path, text)

    assert (line_of(path, where), message) in problems(path)


def test_secret_data_must_be_base64_and_the_view_decodes_both_forms(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"from-data").decode()
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: keys\n  namespace: bank\n"
        f"data:\n  A: {encoded}\n  B: {encoded}\nstringData:\n  B: from-string-data\n"
    )
    path = write(tmp_path, documents(secret, secret.replace("keys", "bad").replace(encoded, "not*base64")))

    assert problems(path) == [
        (
            line_of(path, f"{key}: not*base64"),
            f"Secret bad: data.{key}: not base64; put plain text under stringData",
        )
        for key in "AB"
    ]
    path.write_text(secret)
    [view] = Index.of(load_bundle(tmp_path).objects).secrets.values()
    assert (view.text("A"), view.text("B"), view.text("C")) == ("from-data", "from-string-data", None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5s", 1.5), ("0", 0.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1m 30s", "thirty"])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds(text)
