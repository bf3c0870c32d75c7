"""The operator's console on the running cluster: `up` started it, status says where, it answers.

The session cluster forwards no seed port (TRUSTUSBANK_PORT_FORWARDS=0), so the console is on a
free port, recorded in the status file, as `trustusbank status` prints it. A deny made on the
cluster (an A2A call the AccessPolicy refuses) is on the dashboard's evidence, and the PromQL
panels are answered by the alert evaluator's pod: no panel reports a problem. The dashboard is
behind the sign-in, on as `up` starts it: the test signs in through the provider's form.
"""

from __future__ import annotations

import httpx

from tests.console.board import DashboardPage
from tests.console.signin.world import sign_in
from tests.system.conftest import Cluster
from trustusbank.telemetry.dashboard import PANELS

AGENTS_NS = "trustusbank-bank-agents"
FRAUD_BOT = f"spiffe://cluster.local/ns/{AGENTS_NS}/sa/fraud-bot"
ASK_SUPPORT_BOT = (
    "import httpx\n"
    f"r = httpx.post('http://support-bot.{AGENTS_NS}.svc.cluster.local:8080/', "
    "json={'jsonrpc': '2.0', 'id': 1, 'method': 'SendMessage', 'params': {'message': "
    "{'messageId': 'console-1', 'role': 'ROLE_USER', 'parts': [{'text': 'hi'}]}}}, "
    "headers={'A2A-Version': '1.0'}, timeout=20)\n"
    "print(r.status_code)"
)


async def test_the_console_url_is_in_status_and_the_dashboard_answers_there(cluster: Cluster) -> None:
    console = cluster.status()["console"]
    [dashboard] = [p for p in console["pages"] if p["name"] == "dashboard"]
    [provider] = [p for p in console["pages"] if p["name"] == "signin"]
    assert console["ready"]
    assert dashboard["seed_port"] is None  # no seed port asked for: the session cluster forwards none
    assert dashboard["url"].startswith("http://127.0.0.1:")
    assert dashboard["url"].endswith("/d/dora-evidence")
    printed = cluster.cli("status")
    assert f"console dashboard: {dashboard['url']}" in printed.stdout
    assert f"console signin: {provider['url']}" in printed.stdout
    for page in [p for p in console["pages"] if p["name"] in ("alerts", "inbox", "registry")]:
        assert f"console {page['name']}: {page['url']}" in printed.stdout  # the pods' pages, relayed
    assert {p["name"] for p in console["pages"]} >= {"alerts", "inbox", "registry"}

    refused = cluster.exec_python(f"{AGENTS_NS}/fraud-bot", ASK_SUPPORT_BOT)
    assert refused.stdout.strip().endswith("403"), refused.stdout + refused.stderr
    async with httpx.AsyncClient(trust_env=False, timeout=60) as http:
        response = await sign_in(http, f"{dashboard['url']}?refresh=off")

    assert response.status_code == 200
    page = DashboardPage(response.text)
    assert set(page.panels) == {str(p.id) for p in PANELS} | {"denies"}
    assert 'class="problem"' not in response.text, [
        line for line in response.text.split("<p ") if line.startswith('class="problem"')
    ]
    denies = [r for r in page.panels["denies"]["records"] if r["kind"] == "a2a-deny"]
    assert any(FRAUD_BOT in "".join(r["text"]) for r in denies)
