"""The seed's act scripts on the running cluster: `upgrade-banking-app` (the rug pull) and `reset`.

Neither edits a manifest. The rug pull moves the converter's image tag to new
bytes in the image store and restarts the pod in place, as `docker push` and
`kubectl rollout restart` would; `reset` puts the clean build back, removes
the defence set (exactly what `policies off` does), puts the bank's data back
to its seed (the bank's MCP servers restarted without their data files, which
they seed again) and moves the attacker's view to "nothing seen yet" without
deleting what it received. Both only
change what differs, say what was already as wanted, and record who did what
in the runtime log.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, Topology
from trustusbank.errors import OperationError
from trustusbank.images.builds import BUILDS
from trustusbank.images.converter_builds import CLEAN, DEFAULT_RUG_PULL
from trustusbank.images.signing import Keys, org_public_key
from trustusbank.images.store import Build, ImageStore
from trustusbank.runtime import control
from trustusbank.runtime.apply import actor as apply_actor
from trustusbank.runtime.defence import set_defence
from trustusbank.runtime.rollout import Restarted, RolloutError, rollout_restart
from trustusbank.runtime.supervisor import ready_timeout
from trustusbank.workloads.bank.db import differs_from_seed

CONVERTER = ("trustusbank-bank-vendors", "currency-converter")
CONVERTER_WORKLOAD = "currency-converter"
ATTACKER = ("external-attacker", "mock-attacker")
BANK_NAMESPACE = "trustusbank-bank-mcp"
BANK_DATA = (
    "account-mcp",
    "transaction-mcp",
    "ticket-mcp",
)  # the Deployments whose databases the demos change

Progress = Callable[[str], None]


class ActError(OperationError, RuntimeError):
    """The act could not be done; `log_tail` is the failing pod's, `swap` what was pushed before it failed."""

    def __init__(self, message: str, log_tail: str = "", swap: Swap | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail
        self.swap = swap


@dataclass
class Swap:
    """What happened to the converter's image tag and pod."""

    tag: str
    deployment: str
    old_variant: str | None
    variant: str
    old_digest: str | None
    new_digest: str
    signer: str | None  # who signed the new digest, as the push recorded it
    signature: str  # org | untrusted | unsigned, verified with the org public key
    pushed: bool  # the tag moved
    restarted: list[Restarted] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.pushed or bool(self.restarted)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}

    def image(self) -> dict[str, Any]:
        """What now runs behind the tag, in the shape the acts print."""
        return {
            "tag": self.tag,
            "digest": self.new_digest,
            "build": self.variant,
            "signer": self.signer,
            "signature": self.signature,
            "previous_digest": self.old_digest,
        }


@dataclass(frozen=True)
class Step:
    name: str
    changed: bool
    detail: str


@dataclass
class ResetReport:
    converter: Swap
    policies_removed: list[str]
    attacker: dict[str, Any]
    steps: list[Step]
    bank: dict[str, list[str]] = field(default_factory=dict)  # Deployment -> what differed from the seed
    bank_restarted: list[Restarted] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(step.changed for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "converter": self.converter.to_dict(),
            "policies_removed": self.policies_removed,
            "attacker": self.attacker,
            "bank": self.bank,
            "bank_restarted": [r.to_dict() for r in self.bank_restarted],
            "steps": [asdict(s) for s in self.steps],
            "changed": self.changed,
        }


def current_command() -> str:
    return shlex.join(["trustusbank", *sys.argv[1:]])


def record(files: ClusterFiles, kind: str, fields: dict[str, Any]) -> None:
    files.record_event(kind, fields)


def _running(files: ClusterFiles) -> dict[str, Any]:
    status = control.read_status(files) if control.running_pid(files) is not None else None
    if status is None:
        raise ActError(f"no cluster is running from {files.state}; start one with `trustusbank up --detach`")
    if status.get("phase") != "Running":
        raise ActError(
            f"the cluster in {files.state} is {status.get('phase')}, not Running; retry when it is"
        )
    return status


def _pod(files: ClusterFiles, namespace: str, deployment: str) -> Pod:
    pod = next(
        (
            p
            for p in Topology.load(files.topology).pods
            if (p.namespace, p.deployment) == (namespace, deployment)
        ),
        None,
    )
    if pod is None:
        raise ActError(f"the running cluster has no pod of Deployment {namespace}/{deployment}")
    return pod


def _running_digest(status: dict[str, Any], pod: Pod) -> str | None:
    for entry in status.get("pods", []):
        if (entry.get("namespace"), entry.get("name")) == (pod.namespace, pod.name):
            image_id = entry.get("image_id")
            return str(image_id) if image_id is not None else None
    return None


async def swap_converter(
    files: ClusterFiles, variant: str, *, reason: str, progress: Progress, actor: str, command: str
) -> Swap:
    """Push `variant` of the converter under its tag if the tag points elsewhere, and restart the
    converter's pod if what it runs is not what the tag now points at."""
    status = _running(files)
    build = Build(CONVERTER_WORKLOAD, variant)
    pod = _pod(files, *CONVERTER)
    deployment = "/".join(CONVERTER)
    store = ImageStore(files.images)
    keys = Keys(files.signing, files.images)
    before = store.lookup(pod.image)
    want = build.digest()
    swap = Swap(
        tag=pod.image,
        deployment=deployment,
        old_variant=before.build.variant if before else None,
        variant=variant,
        old_digest=before.digest if before else None,
        new_digest=want,
        signer=None,
        signature="unsigned",
        pushed=False,
    )
    if before is None or before.digest != want:
        progress(f"pushing {build} as {pod.image}")
        pushed = store.retag(pod.image, build, signer=keys.publisher(variant), actor=actor, reason=reason)
        swap.pushed = True
        record(
            files, "image-pushed", {**pushed.to_dict(), "actor": actor, "command": command, "reason": reason}
        )
    keys.org()  # publishes org.pub on first use
    verdict = store.signature_status(pod.image, want, org_public_key(files.images))
    swap.signature = verdict.status
    signed = [s.signer for s in store.signatures(want)]
    swap.signer = signed[0] if signed else None
    if swap.pushed or _running_digest(status, pod) != want:
        progress(f"rollout restart {deployment}")
        swap.restarted = await restart(
            files, deployment, actor=actor, command=command, progress=progress, swap=swap
        )
    return swap


async def restart(
    files: ClusterFiles,
    deployment: str,
    *,
    actor: str,
    command: str,
    progress: Progress,
    fresh_data: bool = False,
    swap: Swap | None = None,
) -> list[Restarted]:
    """A rollout restart as the story makes one: bounded by the pods' ready timeout; a failure is an
    ActError with the failing pod's log tail (and what was pushed before it, if anything)."""
    try:
        return await rollout_restart(
            files,
            deployment,
            actor=actor,
            command=command,
            progress=progress,
            timeout=ready_timeout() + 30,
            fresh_data=fresh_data,
        )
    except RolloutError as exc:
        raise ActError(str(exc), exc.log_tail, swap) from exc


async def upgrade(
    files: ClusterFiles,
    variant: str = DEFAULT_RUG_PULL,
    *,
    progress: Progress = lambda _: None,
    actor: str | None = None,
    command: str | None = None,
) -> Swap:
    """`upgrade-banking-app`: the vendor's new bytes under the same tag, and the pod restarted onto them."""
    builds = BUILDS[CONVERTER_WORKLOAD].variants
    if variant not in builds:
        raise ActError(f"no converter build {variant!r}; choose one of: {', '.join(builds)}")
    actor = actor or apply_actor()
    command = command or current_command()
    swap = await swap_converter(
        files,
        variant,
        reason=f"upgrade-banking-app: {variant}",
        progress=progress,
        actor=actor,
        command=command,
    )
    record(
        files,
        "upgrade-banking-app",
        {"variant": variant, "changed": swap.changed, "actor": actor, "command": command},
    )
    return swap


async def _reset_attacker_view(files: ClusterFiles) -> dict[str, Any]:
    pod = _pod(files, *ATTACKER)
    return await reset_attacker_view(f"http://{pod.app_ip}:{pod.ports[0].port}")  # a port-forward's view


async def reset_attacker_view(url: str) -> dict[str, Any]:
    """Move the attacker's page to "nothing seen yet"; what it received stays counted in `total`."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        seen = (await client.get(f"{url}/api/count")).raise_for_status().json()
        if int(seen["count"]) == 0:
            return {"view_before": 0, "total": int(seen["total"]), "reset": False}
        after = (await client.post(f"{url}/api/reset")).raise_for_status().json()
    return {"view_before": int(seen["count"]), "total": int(after["total"]), "reset": True}


async def _reset_bank_data(
    files: ClusterFiles, *, progress: Progress, actor: str, command: str
) -> tuple[dict[str, list[str]], list[Restarted]]:
    """Restart each bank Deployment whose data differs from its seed without its data files.

    The pods run isolated under their own uids, so the operator does not write their databases:
    the supervisor removes the files between the old pod's exit and the new one's start (a fresh
    volume), and the new pod seeds its database as on first start."""
    changed: dict[str, list[str]] = {}
    restarted: list[Restarted] = []
    for name in BANK_DATA:
        pod = _pod(files, BANK_NAMESPACE, name)
        data = files.pod_dir(pod.namespace, pod.name) / "state" / "data"
        found = [item for path in sorted(data.glob("*.sqlite3")) for item in differs_from_seed(path)]
        if not found:
            continue
        deployment = f"{BANK_NAMESPACE}/{name}"
        changed[deployment] = found
        progress(f"rollout restart {deployment} with its seed data")
        restarted += await restart(
            files, deployment, actor=actor, command=command, progress=progress, fresh_data=True
        )
        record(
            files,
            "bank-data-reset",
            {"deployment": deployment, "differed": found, "actor": actor, "command": command},
        )
    return changed, restarted


async def reset(
    files: ClusterFiles,
    *,
    progress: Progress = lambda _: None,
    actor: str | None = None,
    command: str | None = None,
) -> ResetReport:
    """The Solo-OFF baseline: clean converter, no defence set, the bank's seed data, the attacker's
    view at zero.

    Counters and evidence are kept; running it again changes nothing and says so."""
    actor = actor or apply_actor()
    command = command or current_command()
    _running(files)
    who = {"actor": actor, "command": command}
    steps = []

    swap = await swap_converter(
        files,
        CLEAN,
        reason="reset: the clean build back under the tag",
        progress=progress,
        actor=actor,
        command=command,
    )
    steps.append(
        Step(
            "converter",
            swap.changed,
            f"{swap.tag} -> clean build {swap.new_digest[:19]}…"
            + ("" if swap.changed else " (already clean)"),
        )
    )

    progress("removing the defence set")
    # What `policies off` does (each removal recorded with its actor and file hash), then
    # waiting until every node proxy enforces the set without it.
    removed = [p.name for p in await set_defence(files, control.deploy_of(files), on=False)]
    steps.append(
        Step("defence policies", bool(removed), f"removed {', '.join(removed)}" if removed else "already off")
    )

    progress("checking the bank's data against its seed")
    bank, bank_restarted = await _reset_bank_data(files, progress=progress, actor=actor, command=command)
    steps.append(
        Step(
            "bank data",
            bool(bank),
            "; ".join(f"{d}: {', '.join(found)} -> seed" for d, found in bank.items())
            if bank
            else "already as seeded",
        )
    )

    progress("resetting the attacker's view")
    try:
        attacker = await _reset_attacker_view(files)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise ActError(f"cannot reset the attacker's view: {exc}", swap=swap) from exc
    if attacker["reset"]:
        record(files, "attacker-view-reset", {**attacker, **who})
    detail = (
        f"view moved past {attacker['view_before']} event(s); {attacker['total']} kept"
        if attacker["reset"]
        else f"already clean ({attacker['total']} event(s) kept)"
    )
    steps.append(Step("attacker view", attacker["reset"], detail))

    record(files, "reset", {"changed": [s.name for s in steps if s.changed], **who})
    return ResetReport(swap, removed, attacker, steps, bank, bank_restarted)
