"""`demo egress-llm`'s ModelConfig change: `apply` takes it over deploy/'s, kagent's controller
re-renders the agents that use it (the ones the demo rolls), and a refusal stops the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.manifest import ManifestError
from trustusbank.runtime.apply import applied, apply, delete
from trustusbank.scenario.cluster import Cluster
from trustusbank.scenario.followups import egress_llm


def _patch(tmp_path: Path, text: str = egress_llm.MODEL_CONFIG_PATCH) -> Path:
    patch = tmp_path / egress_llm.MODEL_CONFIG_FILE
    patch.write_text(text)
    return patch


def test_the_change_re_renders_every_agent_on_the_model_config_and_is_undone(tmp_path: Path) -> None:
    cluster = Cluster(ClusterFiles(tmp_path / "state"))
    before = egress_llm._rendered(cluster, DEPLOY)

    installed = apply(cluster.files, DEPLOY, [_patch(tmp_path)])
    after = egress_llm._rendered(cluster, DEPLOY)
    delete(cluster.files, installed)

    moved = sorted(a for a in after if after[a] != before[a])
    assert "support-bot" in moved
    assert json.loads(after["support-bot"])["model"]["base_url"] == egress_llm.LLM_BASE_URL
    assert json.loads(before["support-bot"])["model"]["base_url"] != egress_llm.LLM_BASE_URL
    assert egress_llm._rendered(cluster, DEPLOY) == before
    assert applied(cluster.files) == []


def test_apply_configures_the_existing_model_config(tmp_path: Path) -> None:
    patch = _patch(tmp_path)

    bundle = load_bundle(DEPLOY, include=[patch])

    [config] = [
        m
        for m in bundle.objects
        if (m.kind, m.namespace, m.name) == ("ModelConfig", egress_llm.AGENTS, "scripted")
    ]
    assert config.source.file == patch


def test_a_refused_change_changes_nothing(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    patch = _patch(tmp_path, egress_llm.MODEL_CONFIG_PATCH.replace(egress_llm.AGENTS, "nowhere"))

    with pytest.raises(ManifestError, match="not declared"):
        apply(files, DEPLOY, [patch])
    assert applied(files) == []
