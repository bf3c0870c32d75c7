"""kill -9 during Act 3 (rug-pulled converter, defence on): the story holds and nothing is lost.

One test per component on the session cluster (put back by `reset`): the converter pod, the
destination node's ztunnel, the waypoint, istiod's CA, the alert evaluator; the supervisor
itself is own_cluster/test_supervisor_death.py's. Each runs `endure`: a probe inside a pod's
network tries connections the policy denies over and over while the component is killed
and restarted, and every attempt is refused; then the customer's Act 3 prompt gets the
reply it got before any kill, the attacker has received nothing, and the evidence chain
verifies with every record from before the kill still in it and the crash recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509

from tests.session_cluster import Cluster
from tests.system.act3 import Before, act_three, events, nothing_lost
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod
from trustusbank.evidence import Record
from trustusbank.scenario import receipts
from trustusbank.scenario.cluster import Cluster as Scenario

ATTACKER = "external-attacker/mock-attacker"
EXFIL = "http://mock-attacker.external-attacker:8080/exfil"
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)  # as a pod's PID 1 or its parent reports it
CONVERTER_IDENTITY = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"

# Runs inside a pod (`trustusbank exec`), through the pod's capture, until its stdin closes: one
# JSON line per attempt, each url tried in a loop of its own. Refused: the mesh would not connect
# (SOCKS refusal, nothing listening) or an HTTP 403; anything else reached the target.
PROBE = """
import json, sys, threading, time
import httpx
said, stop = threading.Lock(), threading.Event()
def attempts(url):
    while not stop.is_set():
        start = time.time()
        try:
            status = httpx.get(url, timeout=2).status_code
            outcome, detail = ("refused" if status == 403 else "reached"), str(status)
        except (httpx.ProxyError, httpx.ConnectError) as exc:
            outcome, detail = "refused", str(exc)
        except httpx.HTTPError as exc:
            outcome, detail = "reached", f"{type(exc).__name__}: {exc}"
        line = {"url": url, "start": start, "end": time.time(), "outcome": outcome, "detail": detail}
        with said:
            print(json.dumps(line), flush=True)
        stop.wait(0.05)
print(json.dumps({"probe": "started"}), flush=True)
threads = [threading.Thread(target=attempts, args=(url,)) for url in sys.argv[1:]]
for thread in threads:
    thread.start()
sys.stdin.read()
stop.set()
for thread in threads:
    thread.join()
"""


@dataclass
class Probe:
    """A probe process inside `pod`'s network, trying `urls` until stopped."""

    cluster: Cluster
    pod: str
    urls: list[str]
    proc: subprocess.Popen[str] = field(init=False)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        argv = [sys.executable, "-m", "trustusbank", "exec", self.pod, "--", sys.executable, "-c", PROBE]
        self.proc = subprocess.Popen(
            [*argv, *self.urls],
            env=self.cluster.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert json.loads(first or "{}").get("probe") == "started", self.proc.stderr

    def until(self, done: Callable[[dict[str, Any]], bool]) -> None:
        """Read attempts until one satisfies `done` (an attempt after the restart, say)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.attempts.append(json.loads(line))
            if done(self.attempts[-1]):
                return
        raise AssertionError(f"the probe ended early: {self.proc.stderr}")

    def stop(self) -> None:
        """Close its stdin (the probe's cue to end) and read the rest of what it tried."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        # Through the same reader as `until`, which may hold lines already read ahead.
        self.attempts += [json.loads(line) for line in self.proc.stdout.read().splitlines()]
        err = self.proc.stderr.read()
        assert self.proc.wait(timeout=30) == 0, err

    def of(self, url: str, since: float = 0.0, until: float = float("inf")) -> list[dict[str, Any]]:
        """The attempts at `url` that started within [since, until]."""
        return [a for a in self.attempts if a["url"] == url and since <= a["start"] <= until]


def refused(attempts: list[dict[str, Any]], because: str = "") -> bool:
    """At least one attempt, and every one refused (with `because` in what the client was told)."""
    return bool(attempts) and all(a["outcome"] == "refused" and because in a["detail"] for a in attempts)


@pytest.fixture(scope="module")
def act3(cluster: Cluster) -> Iterator[str]:
    """Act 3 on the session cluster: the converter rug-pulled, the defence on; yields the reply to
    the customer's prompt before any kill. `reset` puts the cluster back as it was found."""
    try:
        yield act_three(cluster.files)
    finally:
        asyncio.run(receipts.baseline(Scenario(cluster.files), progress=lambda _: None))  # `reset`


def pod(cluster: Cluster, ref: str) -> Pod:
    namespace, _, deployment = ref.partition("/")
    found = next(p for p in cluster.topology.pods if (p.namespace, p.deployment) == (namespace, deployment))
    return found


def pod_entry(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda status: next(p for p in status["pods"] if p["name"] == name)


def node_entry(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def entry(status: dict[str, Any]) -> dict[str, Any]:
        node = next(n for n in status["nodes"] if n["name"] == name)
        return {**node, "pid": node["ztunnel_pid"]}

    return entry


def istiod_entry(status: dict[str, Any]) -> dict[str, Any]:
    return dict(status["control_plane"][0])


@dataclass
class Outage:
    """One kill and restart, as the probe saw it."""

    probe: Probe
    crashed: float  # when the runtime saw the process die (the first, for repeated kills)
    restarted: float  # when its last replacement was started (not yet listening)
    ready: float  # when the runtime saw that replacement ready (it may have served a little before)
    added: list[Record]

    def during(self, url: str) -> list[dict[str, Any]]:
        """The attempts at `url` begun while the component was down (before its replacement started)."""
        return self.probe.of(url, self.crashed, self.restarted)

    def restarting(self, url: str) -> list[dict[str, Any]]:
        """The attempts at `url` begun between the kill and the replacement's readiness."""
        return self.probe.of(url, self.crashed, self.ready)


def endure(
    cluster: Cluster,
    reply: str,
    process: str,
    entry: Callable[[dict[str, Any]], dict[str, Any]],
    probe_pod: str,
    urls: list[str],
    *,
    denied: tuple[str, ...] = (EXFIL,),
    kills: int = 1,
    kill_at: Callable[[], float] | None = None,
) -> Outage:
    """Kill `process` (kill -9, `kills` times in a row: each replacement as soon as it started;
    the first at `kill_at` if given) while a probe in `probe_pod` tries `urls`; every attempt at a
    `denied` url is refused, before, during and after; the restart is seen in status; then nothing
    was lost (`nothing_lost`)."""
    before = Before.take(cluster.files)
    was = entry(cluster.status())
    assert was["ready"], was
    probe = Probe(cluster, probe_pod, urls)
    try:
        probe.until(lambda _: {a["url"] for a in probe.attempts} == set(urls))  # each tried once, warm
        pid = was["pid"]
        if kill_at is not None:
            time.sleep(max(0.0, kill_at() - time.time()))
        for n in range(kills):
            os.kill(pid, signal.SIGKILL)
            if n + 1 < kills:  # its replacement, killed once started: the outage grows with the backoff
                restarted = cluster.wait_for(
                    lambda n=n: [
                        e for e in events(cluster.files, "started", process) if e["restarts"] == n + 1
                    ],
                    timeout=30,
                    what=f"{process} to start again",
                )
                pid = restarted[-1]["pid"]
        now = cluster.wait_for(
            lambda: (
                (e := entry(cluster.status()))["restarts"] == was["restarts"] + kills and e["ready"] and e
            ),
            timeout=60,
            what=f"{process} to restart and be ready",
        )
        assert now["pid"] != was["pid"]
        crashed = [e for e in events(cluster.files, "crashed", process) if e["time"] >= before.time]
        assert [e["exit_code"] in KILLED for e in crashed] == [True] * kills, crashed
        ready = events(cluster.files, "ready", process)[-1]
        assert ready["pid"] == now["pid"]
        [restarted] = [e for e in events(cluster.files, "started", process) if e["pid"] == now["pid"]]
        probe.until(lambda attempt: attempt["start"] > ready["time"])
    finally:
        probe.stop()
    outage = Outage(probe, crashed[0]["time"], restarted["time"], ready["time"], [])
    for url in denied:
        assert refused(probe.of(url)), probe.of(url)
        assert outage.restarting(url), f"no attempt at {url} while {process} was down or restarting"
    outage.added = nothing_lost(cluster, before, reply, "crashed", process)
    return outage


def test_killed_converter_comes_back_on_the_same_digest_and_is_still_denied(
    cluster: Cluster, act3: str
) -> None:
    converter = pod(cluster, "trustusbank-bank-vendors/currency-converter")
    image = pod_entry(converter.name)(cluster.status())["image_id"]
    # A bank pod beside it, denied the attacker as the converter is (the converter's own network
    # namespace ends with its PID 1, and a probe in it with it).
    outage = endure(
        cluster,
        act3,
        converter.ref,
        pod_entry(converter.name),
        "trustusbank-bank-mcp/transaction-mcp",
        [EXFIL],
    )
    assert pod_entry(converter.name)(cluster.status())["image_id"] == image, "the same rug-pulled bytes"
    denies = [r for r in outage.added if r.kind.endswith("-deny") and r.src_identity == CONVERTER_IDENTITY]
    assert denies, "the restarted converter tried the attacker with the next prompt, and was denied"


def test_killed_destination_ztunnel_leaves_its_pods_unreachable_not_unprotected(
    cluster: Cluster, act3: str
) -> None:
    node = pod(cluster, ATTACKER).node
    source = next(
        p for p in cluster.topology.pods if p.namespace == "trustusbank-bank-mcp" and p.node != node
    )
    outage = endure(cluster, act3, f"ztunnel/{node}", node_entry(node), source.ref, [EXFIL])
    down = outage.during(EXFIL)
    assert refused(down, "Connection refused"), f"unreachable, nobody to carry it: {down}"
    after = outage.probe.of(EXFIL, since=outage.ready)
    assert refused(after, "not allowed"), f"denied by policy once back: {after}"


def test_killed_waypoint_stops_mcp_calls_rather_than_letting_them_around_it(
    cluster: Cluster, act3: str
) -> None:
    waypoint = next(p for p in cluster.topology.pods if p.role == "waypoint")
    account = pod(cluster, "trustusbank-bank-mcp/account-mcp")
    through = "http://trustusbank-agentgw.trustusbank-platform:8080/mcp/account"
    around = f"http://{account.ip}:8000/mcp"  # the MCP server's own address: no waypoint on the way
    outage = endure(
        cluster,
        act3,
        waypoint.ref,
        pod_entry(waypoint.name),
        "trustusbank-bank-agents/support-bot",
        [EXFIL, through, around],
        denied=(EXFIL, around),
    )
    down = outage.during(through)
    assert refused(down), down
    assert any(a["outcome"] == "reached" for a in outage.probe.of(through, since=outage.ready))


def rotation_due(files: ClusterFiles, pod: Pod) -> float:
    """When `pod`'s node proxy re-issues its SVID next (half its life), read from the SVID it holds."""
    [held] = (files.node_dir(pod.node) / "certs").glob(f"{pod.namespace}.{pod.service_account}.*.pem")
    pem = held.read_bytes()
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
    start, end = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
    return start + (end - start) / 2


def test_killed_istiod_node_proxies_keep_their_svids_until_it_is_back(cluster: Cluster, act3: str) -> None:
    """Killed twice in a row, just before the converter's 8 s SVID is due for rotation: istiod is
    away for at least the two backoffs (0.5 s + 1 s), and the node proxy's once-a-second rotation
    finds it gone. The rotation waits for istiod; the SVIDs held stay in use (the converter's
    allowed mTLS call to the FX API keeps working); none expires, and once istiod is back the
    rotation completes."""
    converter = pod(cluster, "trustusbank-bank-vendors/currency-converter")
    log = cluster.files.ztunnel_log(converter.node)
    size = log.stat().st_size
    fx = "http://fx-api.external-fx:8080/latest?from=GBP&to=EUR"

    def just_before_rotation() -> float:
        due = cluster.wait_for(  # one still ahead: a due one is re-issued within the second
            lambda: (d := rotation_due(cluster.files, converter)) - 0.1 > time.time() and d,
            timeout=15,
            what="the converter's next rotation to be ahead",
        )
        return float(due) - 0.1

    outage = endure(
        cluster,
        act3,
        "istio-system/istiod",
        istiod_entry,
        converter.ref,
        [EXFIL, fx],
        kills=2,
        kill_at=just_before_rotation,
    )
    crashes = events(cluster.files, "crashed", "istio-system/istiod")
    crashes = [e for e in crashes if e["time"] >= outage.crashed]
    assert [e["restart_in_s"] for e in crashes] == [0.5, 1.0], "the backoff doubled: a longer outage"
    during = outage.during(fx)
    assert during, "the allowed call was tried while istiod was away"
    assert all(a["detail"] == "200" for a in during), during
    since = log.read_bytes()[size:].decode(errors="replace")
    assert "istiod is not answering" in since, "the rotation came due while istiod was away"
    assert "rotating" not in since, "no rotation failed: it waited"
    rotated = f"rotated the certificate of {CONVERTER_IDENTITY}"
    assert rotated in since.partition("istiod is not answering")[2], "and completed once istiod was back"


def test_killed_alert_evaluator_leaves_the_soc_mailbox_closed_to_others(cluster: Cluster, act3: str) -> None:
    evaluator = pod(cluster, "trustusbank-observability/alert-evaluator")
    smtp = "http://soc-inbox.trustusbank-observability:2525/"  # only the evaluator may mail
    endure(
        cluster,
        act3,
        evaluator.ref,
        pod_entry(evaluator.name),
        "trustusbank-bank-mcp/transaction-mcp",
        [EXFIL, smtp],
        denied=(EXFIL, smtp),
    )
