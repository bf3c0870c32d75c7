"""The defence levels: cumulative, and made by files present in the bench's copy of deploy/."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from trustusbank.manifests.bundle import check_bundle, load_bundle
from trustusbank.manifests.kagent.controller import agent_spec, expand
from trustusbank.paths import deploy_dir
from trustusbank.scenario.bench import defences
from trustusbank.scenario.bench.defences import LEVELS, copy_deploy, place


def test_levels_are_cumulative_in_the_issues_order() -> None:
    assert [x.name for x in LEVELS] == ["none", "l4", "allowlists", "guard", "all"]
    for before, after in itertools.pairwise(LEVELS):
        assert before.files <= after.files
        assert before.l4 <= after.l4
    with pytest.raises(ValueError, match="unknown defence level x; known: none"):
        defences.levels(("x",))


def test_the_copy_toggles_files_and_stays_a_valid_bundle(tmp_path: Path) -> None:
    copy = copy_deploy(deploy_dir(), tmp_path / "deploy")
    assert not (copy / "extras").exists()
    assert not (copy / defences.ALLOWLISTS).exists()
    assert not (copy / defences.ACCESS).exists()
    assert copy_deploy(deploy_dir(), tmp_path / "deploy") == copy  # a second run starts afresh
    assert not check_bundle(copy).problems
    assert place(copy, frozenset({defences.ALLOWLISTS, defences.ACCESS})) == {
        defences.ALLOWLISTS,
        defences.ACCESS,
    }
    assert (copy / defences.ALLOWLISTS).read_bytes() == (deploy_dir() / defences.ALLOWLISTS).read_bytes()
    assert not check_bundle(copy).problems
    assert place(copy, frozenset({defences.ALLOWLISTS, defences.ACCESS})) == set()
    assert place(copy, frozenset({defences.GUARD})) == {defences.GUARD, defences.ALLOWLISTS, defences.ACCESS}
    assert not check_bundle(copy).problems  # the guard's policies load with the bundle
    assert defences.policy_names(copy / defences.GUARD, "AgentgatewayPolicy")
    assert place(copy, frozenset()) == {defences.GUARD}
    assert not (copy / defences.ACCESS).exists()


def test_a_broad_support_bot_is_given_what_only_the_policies_then_refuse(tmp_path: Path) -> None:
    copy = copy_deploy(deploy_dir(), tmp_path / "deploy")
    place(copy, frozenset({defences.ALLOWLISTS, defences.ACCESS}))
    defences.broaden(copy)
    defences.broaden(copy)  # twice: the same agent, nothing listed twice
    spec = agent_spec(expand(load_bundle(copy)), "trustusbank-bank-agents", "support-bot")
    tools = [name for server in spec.mcp_servers for name in server.tool_names]
    assert {"get_balance", "convert_currency", "flag_suspicious", "create_ticket"} <= set(tools)
    assert len(tools) == len(set(tools))
    assert sorted(a.name for a in spec.sub_agents) == ["fraud-bot", "triage-bot"]
    assert not check_bundle(copy).problems
