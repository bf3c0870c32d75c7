"""`policy lint` says who enforces each AccessPolicy, and which subjects kagent OSS cannot enforce."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from tests.lint import USER_GROUP, by_code, shape
from tests.manifests.kagent import AGENTS_DIR, DEPLOY, MODEL, agent, documents, line_of, policy, write
from trustusbank.cli.lint_cmd import app
from trustusbank.lint import Severity, lint_path
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.kagent.objects import Index
from trustusbank.manifests.kagent.oss import authorization_policies, to_yaml

ENFORCEMENT = "oss-access-enforcement"
ACCESS = AGENTS_DIR / "access-policies.yaml"
NS = "trustusbank-bank-agents"
WAYPOINT = 'kagent.solo.io/waypoint: "true"'
GROUPS = "- kind: Agent\n  name: a\n- kind: UserGroup\n  name: tellers\n- kind: UserGroup\n  name: auditors"


def test_every_access_policy_says_who_enforces_it_and_names_the_command() -> None:
    findings = by_code(lint_path(ACCESS), ENFORCEMENT)

    assert shape(findings) == [
        (line_of(ACCESS, "targetRef:", n), Severity.INFO, ENFORCEMENT, f"{NS}/{name}", None)
        for n, name in enumerate(
            ("deny-all-agents", "support-bot-callers", "fraud-bot-callers", "triage-bot-callers"), start=1
        )
    ]
    assert findings[0].message == (
        "enforced by the agent (embedded runtime), by its waypoint (kagent Enterprise); on kagent OSS only "
        "by the AuthorizationPolicies `trustusbank manifests oss-access` renders"
    )
    assert "kagent OSS ignores AccessPolicy" in findings[0].on_cluster


def test_the_consoles_user_groups_are_said_to_be_unenforceable_on_kagent_oss() -> None:
    """deploy/'s admins may call support-bot and fraud-bot from the console: a claim of the person's
    token, which only the agent (embedded) or a waypoint (kagent Enterprise) can check."""
    found = by_code(lint_path(ACCESS), USER_GROUP)

    assert shape(found) == [
        (line_of(ACCESS, "- kind: UserGroup", n), Severity.WARNING, USER_GROUP, f"{NS}/{name}", None)
        for n, name in enumerate(("support-bot-callers", "fraud-bot-callers"), start=1)
    ]
    assert all(f.message.startswith("group admins cannot be enforced on kagent OSS") for f in found)
    assert all("it needs RequestAuthentication at a waypoint" in f.message for f in found)
    admits_nobody = "kagent OSS: the generated policy admits nobody by group membership"
    assert all(f.on_cluster == admits_nobody for f in found)


def bundle(tmp_path: Path, *policies: str) -> Path:
    agents = (
        agent("a", "- type: Agent\n  agent:\n    name: b", labels=WAYPOINT),
        agent("b", labels=WAYPOINT),
    )
    return write(tmp_path, documents(MODEL, *agents, *policies))


def test_a_user_group_subject_is_a_warning_saying_what_the_generated_policy_does(tmp_path: Path) -> None:
    path = bundle(tmp_path, policy("b-callers", "b", GROUPS), policy("no-tellers", "a", GROUPS, "DENY"))

    found = by_code(lint_path(path), USER_GROUP)

    assert [(f.line, f.severity, f.policy) for f in found] == [
        (line_of(path, "- kind: UserGroup", 1), Severity.WARNING, "bank/b-callers"),
        (line_of(path, "- kind: UserGroup", 2), Severity.WARNING, "bank/b-callers"),
        (line_of(path, "- kind: UserGroup", 3), Severity.WARNING, "bank/no-tellers"),
        (line_of(path, "- kind: UserGroup", 4), Severity.WARNING, "bank/no-tellers"),
    ]
    assert found[0].message.startswith("group tellers cannot be enforced on kagent OSS")
    assert found[0].on_cluster == "kagent OSS: the generated policy admits nobody by group membership"
    assert "denies every caller but the scrapers" in found[2].on_cluster


def test_without_access_policies_there_is_nothing_to_say(tmp_path: Path) -> None:
    assert by_code(lint_path(bundle(tmp_path)), ENFORCEMENT) == []


def test_the_info_does_not_fail_strict_but_a_user_group_does(tmp_path: Path) -> None:
    runner = CliRunner()
    plain = bundle(tmp_path / "plain", policy("b-callers", "b", "- kind: Agent\n  name: a"))
    groups = bundle(tmp_path / "groups", policy("b-callers", "b", GROUPS))

    assert runner.invoke(app, ["lint", str(plain), "--strict"]).exit_code == 0
    assert runner.invoke(app, ["lint", str(groups)]).exit_code == 0
    strict = runner.invoke(app, ["lint", str(groups), "--strict"])
    assert (strict.exit_code, strict.output.splitlines()[-1]) == (1, "0 errors, 2 warnings, 1 info")


def test_deploy_with_the_generated_policies_lints_clean(tmp_path: Path) -> None:
    # Their selectors pick the pods kagent runs for the Agents, which no Deployment declares.
    bundle = shutil.copytree(DEPLOY, tmp_path / "deploy")
    generated = to_yaml(authorization_policies(Index.of(load_bundle(DEPLOY).objects)))
    (bundle / "08-defence" / "kagent-access.yaml").write_text(generated)

    findings = lint_path(bundle)

    assert [f.headline() for f in findings if f.severity != Severity.INFO and f.code != USER_GROUP] == []
    assert len(by_code(findings, ENFORCEMENT)) == 4
