"""Turn a Deployment's container into a local process: command, environment, volumes, probe.

What a container runtime and a pod network would give the process, the
embedded runtime emulates, and each emulation is named here:
- the network namespace: the app binds its pod's private address
  (`TRUSTUSBANK_POD_IP`, which `serve` uses for `--host 0.0.0.0`);
- traffic capture: `ALL_PROXY=socks5h://<capture>:15001`, the node proxy, so names
  like `<svc>.<ns>.svc.cluster.local` resolve only through the mesh. Isolated, the
  capture is at 127.0.0.1 in the pod's own network namespace, where the node proxy
  planted it; cooperative, it is the pod IP on the shared loopback;
- what a pod writes for the evidence trail (JSON logs, spans) goes to its own
  `out/` directory, which the trail reads as a node's log collector would;
- configMap volumes: files written under the pod's directory, and env values
  that point into a mountPath rewritten to that directory;
- the image pull: `TRUSTUSBANK_IMAGE` is the container's image reference and
  `TRUSTUSBANK_IMAGE_STORE` the registry it is pulled from; `serve` runs the build
  the tag resolves to when the process starts (the Deployment never names a build);
- what kagent's controller gives an agent pod about the identity provider whose users
  call it: the provider's issuer, audience and public JWKS, as a file in the pod's own
  directory named by `TRUSTUSBANK_AGENT_USER_TOKENS` (`runtime/user_tokens.py`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.ports import IN_POD_CAPTURE, OUTBOUND_PORT
from trustusbank.cluster.topology import Pod
from trustusbank.env import (
    AGENT_USER_TOKENS,
    BUILD_VARIANT,
    DEPLOY_DIR,
    IMAGE,
    IMAGE_STORE,
    LOGS_DIR,
    POD_IP,
    STATE_DIR,
    TOPOLOGY,
    TRACES_DIR,
)
from trustusbank.errors import ConfigError
from trustusbank.manifests.bundle import Bundle
from trustusbank.manifests.core import ConfigMap, Container, Deployment
from trustusbank.manifests.kagent.controller import MANAGED_BY

USER_TOKENS_VOLUME = "kagent-user-tokens"
USER_TOKENS_FILE = "provider.json"

PROXY_VARS = (
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
)


class PodSpecError(ConfigError, ValueError):
    """Something in a Deployment that the embedded runtime cannot honour."""


@dataclass(frozen=True)
class PodLaunch:
    command: list[str]
    env: dict[str, str]
    cwd: Path
    probe_url: str
    shared: list[Path]  # what the pod reads of the platform's files (its sandbox shows these read-only)


def _command(container: Container) -> list[str]:
    argv = [*container.command, *container.args]
    if argv[:1] == ["trustusbank"]:
        return [sys.executable, "-m", "trustusbank", *argv[1:]]
    raise PodSpecError(
        f"container {container.name}: only `trustusbank ...` commands can run here, got {argv[:1]}"
    )


def _volumes(deployment: Deployment, bundle: Bundle, pod_dir: Path) -> dict[str, Path]:
    """Materialize configMap volumes; returns mountPath -> local directory."""
    spec = deployment.manifest.body["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"])
            if volume is None or "configMap" not in volume:
                raise PodSpecError(f"volume {mount['name']!r}: only configMap volumes are supported")
            cm = bundle.view("ConfigMap", deployment.namespace, volume["configMap"]["name"])
            if not isinstance(cm, ConfigMap):
                raise PodSpecError(f"configMap {volume['configMap']['name']!r} is not in the manifests")
            local = pod_dir / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            for key, value in cm.data.items():
                (local / key).write_text(value)
            mounts[mount["mountPath"].rstrip("/")] = local
    return mounts


def _rewrite(value: str, mounts: dict[str, Path]) -> str:
    for mount_path, local in mounts.items():
        if value == mount_path or value.startswith(mount_path + "/"):
            return str(local) + value[len(mount_path) :]
    return value


def _probe_url(deployment: Deployment, pod: Pod) -> str:
    container = deployment.manifest.body["spec"]["template"]["spec"]["containers"][0]
    probe = container.get("readinessProbe", {}).get("httpGet")
    if probe:
        port = pod.target_port(probe["port"]) or pod.ports[0].port
        return f"http://{pod.app_ip}:{port}{probe.get('path', '/')}"
    return f"http://{pod.app_ip}:{pod.ports[0].port}/"


def launch_spec(
    pod: Pod,
    deployment: Deployment,
    bundle: Bundle,
    state: Path,
    deploy: Path,
    in_mesh: bool,
    image_store: Path | None = None,
    in_pod_capture: bool = False,
    user_tokens: str | None = None,
) -> PodLaunch:
    """`user_tokens`: the sign-in provider's file (`runtime/user_tokens.py`), given to the pods
    kagent's controller made for Agents; None: no provider, so they accept no person's token."""
    container = deployment.containers[0]
    if container.env_value_from:
        names = ", ".join(sorted(container.env_value_from))
        raise PodSpecError(f"container {container.name}: env valueFrom is not supported ({names})")
    pod_dir = state / "pods" / pod.namespace / pod.name
    pod_dir.mkdir(parents=True, exist_ok=True)
    mounts = _volumes(deployment, bundle, pod_dir)
    inherited = (*PROXY_VARS, IMAGE.name, IMAGE_STORE.name, BUILD_VARIANT.name, AGENT_USER_TOKENS.name)
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    if container.image:
        env[IMAGE.name] = container.image
    if image_store is not None:
        env[IMAGE_STORE.name] = str(image_store)
    env.update({k: _rewrite(v, mounts) for k, v in container.env.items()})
    env[POD_IP.name] = pod.app_ip
    env[STATE_DIR.name] = str(pod_dir / "state")
    env[DEPLOY_DIR.name] = str(deploy.resolve())
    # What a pod learns from its platform: where spans go (an OTLP endpoint on a cluster), and who
    # is at which address (the mesh's workload registry; agents map a caller's address to its identity).
    out = ClusterFiles.pod_outputs(pod_dir)
    for directory in out.values():
        directory.mkdir(parents=True, exist_ok=True)
    env[TRACES_DIR.name] = str(out["traces"])
    env[LOGS_DIR.name] = str(out["logs"])
    env[TOPOLOGY.name] = str(state / "topology.json")
    env["HOSTNAME"] = pod.name
    if user_tokens is not None and deployment.manifest.labels.get(MANAGED_BY) == "kagent":
        volume = pod_dir / "volumes" / USER_TOKENS_VOLUME
        volume.mkdir(parents=True, exist_ok=True)
        (volume / USER_TOKENS_FILE).write_text(user_tokens, encoding="utf-8")
        env[AGENT_USER_TOKENS.name] = str(volume / USER_TOKENS_FILE)
    # The image's Python comes first on its PATH, as in a container built from it.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
    if in_mesh:
        capture = IN_POD_CAPTURE if in_pod_capture else pod.ip
        env["ALL_PROXY"] = env["all_proxy"] = f"socks5h://{capture}:{OUTBOUND_PORT}"
    shared = [deploy, state / "topology.json", *([image_store] if image_store is not None else [])]
    return PodLaunch(_command(container), env, pod_dir, _probe_url(deployment, pod), shared)


async def http_ready(url: str) -> bool:
    """kubelet's httpGet probe: straight to the pod, not through the mesh (as kubelet's are exempt)."""
    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        return (await client.get(url)).status_code < 400
