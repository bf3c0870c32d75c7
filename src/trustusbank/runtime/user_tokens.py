"""What agent pods are told about the console's sign-in provider: its issuer, client and public keys.

kagent's UI calls agents with the signed-in person's ID token; the agent checks it (UserGroup
subjects match its `groups`). A pod cannot reach the provider (its network is its own), so the
runtime does what a controller does with an IdP's JWKS: renders it into the pod as a file, with
the issuer the tokens name and the audience they are for (the console's client). The keys are
the public half of the provider's signing key, which is kept under the state directory and
outlives the console process, so the file stays right across the console's restarts.
"""

from __future__ import annotations

import json
from pathlib import Path

from joserfc.jwk import KeySet

from trustusbank.agents.a2a.user_tokens import provider_document
from trustusbank.console.signin.chain import CLIENT_ID
from trustusbank.console.signin.keyfiles import signin_dir, signing_key


def provider_file_text(state: Path, issuer: str) -> str:
    """The JSON an agent reads from `TRUSTUSBANK_AGENT_USER_TOKENS` (made from the key the provider
    at `issuer` signs with; the key is made first if the provider has not started yet)."""
    public = KeySet([signing_key(signin_dir(state))]).as_dict(private=False)
    return json.dumps(provider_document(issuer, CLIENT_ID, dict(public)), indent=2)
