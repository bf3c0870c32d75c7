"""`demo egress-llm`'s ModelConfig change: `apply` takes it over deploy/'s, and a refusal is a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.manifests.bundle import load_bundle
from trustusbank.runtime.apply import applied
from trustusbank.scenario.followups import egress_llm


def test_the_model_config_change_replaces_deploys_and_is_undone(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")

    said, problem = egress_llm._try_model_config_change(files, DEPLOY, tmp_path)

    assert problem is None, said
    assert said.startswith("accepted")
    assert applied(files) == []


def test_apply_configures_the_existing_model_config(tmp_path: Path) -> None:
    patch = tmp_path / "modelconfig.yaml"
    patch.write_text(egress_llm.MODEL_CONFIG_PATCH)

    bundle = load_bundle(DEPLOY, include=[patch])

    [config] = [
        m
        for m in bundle.objects
        if (m.kind, m.namespace, m.name) == ("ModelConfig", egress_llm.AGENTS, "scripted")
    ]
    assert config.source.file == patch


def test_a_refused_change_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        egress_llm, "MODEL_CONFIG_PATCH", egress_llm.MODEL_CONFIG_PATCH.replace(egress_llm.AGENTS, "nowhere")
    )
    files = ClusterFiles(tmp_path / "state")

    said, problem = egress_llm._try_model_config_change(files, DEPLOY, tmp_path)

    assert said.startswith("refused")
    assert problem is not None
    assert "not declared" in problem
    assert applied(files) == []
