"""`policy lint` on kagent agents and AccessPolicies: graphs that contradict the agents' own tools,
grants nobody uses, policies a cluster ignores, and model keys that are not there."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.lint import by_code, shape, unexpected
from tests.manifests.kagent import DEPLOY, FIXTURES, MODEL, agent, documents, line_of, policy, write
from trustusbank.cli.lint_cmd import app
from trustusbank.lint import Severity, lint_path

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
COMPANION = FIXTURES / "companion-graph.yaml"
AGENTS_NS = "trustusbank-bank-agents"
WAYPOINT = 'kagent.solo.io/waypoint: "true"'
AGENT_TOOL = "- type: Agent\n  agent:\n    name: {name}"
OSS = "oss-access-enforcement"  # the info on every AccessPolicy: who enforces it


def test_the_companion_repositorys_graph_contradicts_itself() -> None:
    findings = lint_path(COMPANION)

    model = "modelConfig: anthropic-haiku"
    no_key, unused = "kagent-model-key-absent", "kagent-unused-grant"
    support, fraud = f"{AGENTS_NS}/support-bot-callers-allowlist", f"{AGENTS_NS}/fraud-bot-callers-allowlist"
    assert shape(findings) == [
        (line_of(COMPANION, model, 1), INFO, no_key, f"{AGENTS_NS}/support-bot", None),
        (line_of(COMPANION, "- type: Agent", 1), E, "kagent-handoff-denied", f"{AGENTS_NS}/support-bot", 3),
        (line_of(COMPANION, model, 2), INFO, no_key, f"{AGENTS_NS}/fraud-bot", None),
        (line_of(COMPANION, model, 3), INFO, no_key, f"{AGENTS_NS}/triage-bot", None),
        (line_of(COMPANION, "targetRef:", 1), INFO, OSS, support, None),
        (line_of(COMPANION, "- kind: Agent", 1), W, unused, support, None),
        (line_of(COMPANION, "targetRef:", 2), INFO, OSS, fraud, None),
        (line_of(COMPANION, "- kind: Agent", 2), W, unused, fraud, None),
    ]
    [denied] = by_code(findings, "kagent-handoff-denied")
    assert denied.message == (
        "support-bot hands off to fraud-bot, but the AccessPolicies let only triage-bot call fraud-bot: "
        "the graph contradicts itself"
    )
    assert denied.on_cluster == "the hand-off is refused at fraud-bot's waypoint (HTTP 403)"
    [grant, _] = by_code(findings, unused)
    assert (
        grant.message
        == "lets triage-bot call support-bot, but triage-bot has no tool of type Agent naming support-bot"
    )


def test_the_deploy_bundle_has_no_kagent_findings() -> None:
    findings = lint_path(DEPLOY)

    assert [f.headline() for f in findings if f.code.startswith("kagent-")] == []
    assert [f.headline() for f in unexpected(findings)] == []


def test_the_cli_fails_on_the_contradiction() -> None:
    result = CliRunner().invoke(app, ["lint", str(COMPANION)])

    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "1 error, 2 warnings, 5 info"


def graph(tmp_path: Path, *policies: str, labels: str = WAYPOINT) -> Path:
    """Agents a -> b in namespace bank, plus `policies`."""
    agents = (agent("a", AGENT_TOOL.format(name="b"), labels=labels), agent("b", labels=labels))
    return write(tmp_path, documents(MODEL, *agents, *policies))


def test_an_explicit_deny_of_a_hand_off_names_the_policy(tmp_path: Path) -> None:
    path = graph(tmp_path, policy("no-a", "b", "- kind: Agent\n  name: a", action="DENY"))

    [finding] = [f for f in lint_path(path) if f.code != OSS]

    assert (finding.line, finding.code) == (line_of(path, "- type: Agent"), "kagent-handoff-denied")
    assert (
        finding.message
        == "a hands off to b, but AccessPolicy bank/no-a denies a calling b: the graph contradicts itself"
    )


def test_the_baseline_alone_refuses_every_hand_off(tmp_path: Path) -> None:
    path = graph(tmp_path, policy("deny-all", "*", action="DENY"))

    [finding] = [f for f in lint_path(path) if f.code != OSS]

    assert finding.code == "kagent-handoff-denied"
    assert (
        finding.message
        == "a hands off to b, but the AccessPolicies let only no caller call b: the graph contradicts itself"
    )


def test_a_policy_for_an_agent_not_in_the_input_suggests_the_near_miss(tmp_path: Path) -> None:
    path = graph(tmp_path, policy("b-callers", "bb", "- kind: Agent\n  name: a"))

    assert shape(by_code(lint_path(path), "kagent-target-missing")) == [
        (line_of(path, 'name: "bb"'), W, "kagent-target-missing", "bank/b-callers", None)
    ]
    assert by_code(lint_path(path), "kagent-target-missing")[0].message == (
        "targets Agent 'bb', which is not in 'bank' (did you mean 'b'?)"
    )


def test_a_policy_for_an_agent_without_a_waypoint_does_nothing_on_a_cluster(tmp_path: Path) -> None:
    path = graph(
        tmp_path, policy("b-callers", "b", "- kind: Agent\n  name: a"), policy("all", "*"), labels="team: x"
    )

    found = by_code(lint_path(path), "kagent-no-waypoint")

    assert [(f.line, f.severity, f.policy, f.message) for f in found] == [
        (
            line_of(path, "targetRef:", 1),
            E,
            "bank/b-callers",
            f"guards Agent b, which lacks the label {WAYPOINT}",
        ),
        (line_of(path, "targetRef:", 2), E, "bank/all", f"guards Agent a, which lacks the label {WAYPOINT}"),
        (line_of(path, "targetRef:", 2), E, "bank/all", f"guards Agent b, which lacks the label {WAYPOINT}"),
    ]


def test_a_model_key_in_the_input_is_not_reported(tmp_path: Path) -> None:
    model = MODEL + "  apiKeySecret: model-key\n  apiKeySecretKey: OPENAI_API_KEY\n"
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: model-key\n  namespace: bank\n"
        "stringData:\n  OPENAI_API_KEY: k\n"
    )
    path = write(tmp_path, documents(model, agent("a")))

    assert shape(lint_path(path)) == [
        (line_of(path, "modelConfig: scripted"), INFO, "kagent-model-key-absent", "bank/a", None)
    ]
    path.write_text(documents(model, secret, agent("a")))
    assert lint_path(path) == []
