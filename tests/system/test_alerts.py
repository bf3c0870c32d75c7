"""Alerts on the embedded cluster: an AccessPolicy deny reaches the SOC inbox, mailed through the mesh.

Lives beside the session's `cluster` fixture (tests/runtime/conftest.py) so it shares that
cluster; the evaluator and the inbox are pods of deploy/10-observability.
"""

from __future__ import annotations

import json
import time

from tests.system.conftest import Cluster
from trustusbank.alerts import client

AGENTS_NS = "trustusbank-bank-agents"
FRAUD_BOT = f"spiffe://cluster.local/ns/{AGENTS_NS}/sa/fraud-bot"
EVALUATOR = "spiffe://cluster.local/ns/trustusbank-observability/sa/alert-evaluator"


def test_an_access_policy_deny_is_mailed_to_the_soc_through_the_mesh(cluster: Cluster) -> None:
    since = time.time()
    # fraud-bot may call triage-bot, but nobody but the chatbot may call support-bot.
    code = (
        "import httpx\n"
        f"r = httpx.post('http://support-bot.{AGENTS_NS}.svc.cluster.local:8080/', "
        "json={'jsonrpc': '2.0', 'id': 1, 'method': 'SendMessage', 'params': {'message': "
        "{'messageId': 'm1', 'role': 'ROLE_USER', 'parts': [{'text': 'hi'}]}}}, "
        "headers={'A2A-Version': '1.0'}, timeout=20)\n"
        "print(r.status_code)"
    )
    result = cluster.exec_python(f"{AGENTS_NS}/fraud-bot", code)
    assert result.stdout.strip().endswith("403"), result.stdout + result.stderr

    alerts_url, inbox_url = client.alerts_url(cluster.files), client.inbox_url(cluster.files)
    fired = client.wait_for_alerts(alerts_url, ["KagentAccessPolicyDeny"], since, timeout=20)
    [alert] = [a for a in fired if a["labels"]["source_principal"].endswith("/sa/fraud-bot")]
    assert alert["labels"]["agent"] == "support-bot"
    assert alert["labels"]["offender"] == f"{AGENTS_NS}-fraud-bot"

    mail = client.wait_for_mail(inbox_url, ["KagentAccessPolicyDeny"], since, timeout=20)
    [message] = [m for m in mail if m["offender"] == FRAUD_BOT]
    assert message["peer_identity"] == EVALUATOR, "delivered over HBONE with the evaluator's own SVID"
    assert f"Offending SPIFFE ID: {FRAUD_BOT}" in message["body"]
    assert f"trustusbank apply -f quarantine-{AGENTS_NS}-fraud-bot.yaml" in message["body"]

    logged = client.alert_log(cluster.files, since=since, event="notified")
    assert any(e["offender"] == FRAUD_BOT for e in logged), json.dumps(logged)
    snapshot = client.fired_alerts(alerts_url)
    assert snapshot, "the evaluator answers /api/alerts"
