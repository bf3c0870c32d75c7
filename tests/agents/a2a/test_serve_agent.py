"""`trustusbank serve agent` with the write-up's Anthropic ModelConfig and no key: a clear error at start."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tests.paths import DEPLOY
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.kagent.controller import agent_spec
from trustusbank.manifests.kagent.objects import Index
from trustusbank.manifests.kagent.resolve import model_spec
from trustusbank.manifests.kagent.spec import SPEC_ENV


def test_missing_anthropic_key_stops_the_agent_at_start_with_the_fix(tmp_path: Path) -> None:
    bundle = load_bundle(DEPLOY)
    spec = agent_spec(bundle, "trustusbank-bank-agents", "support-bot")
    assert spec.model.provider == "openai", "deploy/ runs on the scripted model"
    anthropic = model_spec(
        Index.of(bundle.objects).model_configs[("trustusbank-bank-agents", "anthropic-haiku")]
    )
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(replace(spec, model=anthropic).to_json())
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env.update({SPEC_ENV: str(spec_file), "TRUSTUSBANK_STATE_DIR": str(tmp_path / "state")})

    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", "serve", "agent", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "anthropic-haiku" in message
    assert "kubectl create secret generic kagent-anthropic" in message
    assert "export ANTHROPIC_API_KEY=" in message
