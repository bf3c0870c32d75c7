"""Agent pods are told of the console's sign-in provider: a file in the pod, named by its env.

The file is made from the key the provider signs with (kept under the state directory), so a
token the real provider issues verifies with what the pod is given, and only agent pods (the
ones kagent's controller made) are given it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.agents.a2a.user_tokens import TrustedProvider
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import plan
from trustusbank.cluster.watch import load_in_force
from trustusbank.console.signin.chain import CLIENT_ID
from trustusbank.console.signin.keyfiles import signin_dir, signing_key
from trustusbank.console.signin.provider import Grant, Provider
from trustusbank.console.signin.users import USERS
from trustusbank.env import AGENT_USER_TOKENS
from trustusbank.manifests.core import Deployment
from trustusbank.runtime.podspec import launch_spec
from trustusbank.runtime.user_tokens import provider_file_text

ISSUER = "http://127.0.0.1:15556"


def test_a_token_the_console_provider_issues_verifies_with_what_the_pod_is_given(tmp_path: Path) -> None:
    state = tmp_path / "state"
    text = provider_file_text(state, ISSUER + "/")
    provider = Provider(ISSUER, signing_key(signin_dir(state)), [])  # as the console process makes it
    admin = USERS[0]
    token = provider.id_token(Grant(CLIENT_ID, "http://x/cb", "c", "n", admin, int(time.time()), 0))

    document = json.loads(text)
    person = TrustedProvider.from_document(document).verify(token)

    assert (document["issuer"], document["audience"]) == (ISSUER, CLIENT_ID)
    assert all("d" not in key and "p" not in key for key in document["jwks"]["keys"])  # public only
    assert (person.email, person.groups) == (admin.email, admin.groups)
    assert provider_file_text(state, ISSUER) == text  # the same key on the next start


@pytest.mark.parametrize(("ref", "told"), [("trustusbank-bank-agents/support-bot", True), ("chatbot", False)])
def test_only_agent_pods_are_told_of_the_provider(
    ref: str, told: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AGENT_USER_TOKENS.name, "/somewhere/the/supervisor/was/given.json")
    files = ClusterFiles(tmp_path / "state")
    bundle = load_in_force(DEPLOY, files)
    topology = plan(bundle, 77)
    pod = next(p for p in topology.pods if p.ref.startswith(ref) or p.deployment == ref)
    deployment = bundle.view("Deployment", pod.namespace, pod.deployment)
    assert isinstance(deployment, Deployment)
    text = provider_file_text(files.state, ISSUER)

    given = launch_spec(pod, deployment, bundle, files.root, DEPLOY, in_mesh=True, user_tokens=text)
    without = launch_spec(pod, deployment, bundle, files.root, DEPLOY, in_mesh=True, user_tokens=None)

    assert AGENT_USER_TOKENS.name not in without.env  # never the supervisor's own
    if not told:
        assert AGENT_USER_TOKENS.name not in given.env
        return
    path = Path(given.env[AGENT_USER_TOKENS.name])
    assert path.is_relative_to(given.cwd)  # in the pod's own directory: what its sandbox shows it
    assert path.read_text(encoding="utf-8") == text
