"""deploy/extras/: manifests applied on demand only (the MCP guard policy), never with deploy/.

`up` and every node proxy load deploy/ as a directory walk (`yaml_files`), which skips an
`extras` folder; naming the file (as `apply` and the bench do) loads it, and then it must be
a valid part of the bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.watch import load_in_force
from trustusbank.manifests.bundle import check_bundle
from trustusbank.manifests.gateway.objects import AgentgatewayPolicy
from trustusbank.manifests.manifest import Manifest
from trustusbank.manifests.yaml_source import EXTRAS_DIR, yaml_files
from trustusbank.runtime.apply import apply

GUARD_POLICY = DEPLOY / EXTRAS_DIR / "mcp-guard-policy.yaml"
GUARDS = {"account-mcp-guard", "transaction-mcp-guard", "ticket-mcp-guard", "currency-converter-guard"}


def guard_policies(objects: Sequence[Manifest]) -> set[str]:
    return {
        m.name
        for m in objects
        if m.kind == "AgentgatewayPolicy" and AgentgatewayPolicy.from_manifest(m).ext_proc is not None
    }


def test_a_directory_walk_skips_extras_but_a_named_folder_or_file_is_read() -> None:
    assert not [f for f in yaml_files(DEPLOY) if EXTRAS_DIR in f.relative_to(DEPLOY).parts]
    assert yaml_files(DEPLOY / EXTRAS_DIR) == [GUARD_POLICY]
    assert yaml_files(GUARD_POLICY) == [GUARD_POLICY]


def test_up_does_not_load_the_guard_policy(tmp_path: Path) -> None:
    bundle = load_in_force(DEPLOY, ClusterFiles(tmp_path))

    assert guard_policies(bundle.objects) == set()


def test_the_guard_policy_is_a_valid_part_of_the_bundle() -> None:
    report = check_bundle(DEPLOY, include=[GUARD_POLICY])

    assert report.problems == []
    assert guard_policies(report.objects) == GUARDS


def test_applying_it_puts_the_guard_in_force(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path)

    [installed] = apply(files, DEPLOY, [GUARD_POLICY])

    assert installed.read_bytes() == GUARD_POLICY.read_bytes()
    assert guard_policies(load_in_force(DEPLOY, files).objects) == GUARDS
