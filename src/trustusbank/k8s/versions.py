"""Every version Kubernetes mode installs or builds on, pinned in one place.

Bumping one is a one-line change here; the installer, the image build, the docs and the
tests read them from this module.
"""

from __future__ import annotations

# The image every workload runs (`trustusbank serve <workload>` is its entry point).
PYTHON_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
DEBIAN_SUITE = "bookworm"
REGISTRY = "localhost:5001"  # the write-up's local registry, beside the kind cluster
# The Kubernetes the manifests are checked against (`k8s.schemas`): kind v0.33.0's default node
# image, kindest/node:v1.37.0; kubernetes-validate ships its OpenAPI schemas from 1.37.0 on.
KUBERNETES_VERSION = "1.37"

# The cluster (`k8s up --kind`): three nodes as the write-up's kind-config (control plane + 2 workers).
KIND = "v0.33.0"
KIND_NODE_IMAGE = "kindest/node:v1.37.0"
KIND_CLUSTER = "trustusbank"
REGISTRY_IMAGE = "docker.io/library/registry:3"
REGISTRY_CONTAINER = "kind-registry"

# Gateway API CRDs (standard channel), then Istio ambient by Helm (base, istiod, cni, ztunnel).
GATEWAY_API = "v1.6.2"
GATEWAY_API_CRDS = (
    f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API}/standard-install.yaml"
)
ISTIO = "1.31.1"
ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"

# agentgateway's own controller: the only OSS control plane that applies AgentgatewayPolicy
# (istiod's agentgateway integration reads Gateway API resources only). Chart tags have no `v`.
AGENTGATEWAY = "1.5.0"
AGENTGATEWAY_CHARTS = "oci://cr.agentgateway.dev/charts"
AGENTGATEWAY_OSS_CLASS = "agentgateway"
AGENTGATEWAY_ENTERPRISE_CLASS = "enterprise-agentgateway-waypoint"

# kagent OSS, the 0.x line whose kagent.dev/v1alpha2 Agent/ModelConfig deploy/ uses (1.0 replaced them).
KAGENT = "0.10.4"
KAGENT_CHARTS = "oci://ghcr.io/kagent-dev/kagent/helm"

# The write-up's observability stack.
KUBE_PROMETHEUS_STACK = "91.5.0"
PROMETHEUS_CHARTS = "https://prometheus-community.github.io/helm-charts"
GRAFANA_CHARTS = "https://grafana-community.github.io/helm-charts"
LOKI = "18.11.0"
TEMPO = "2.2.4"
MAILPIT = "0.31.3"
MAILPIT_CHARTS = "https://jouve.github.io/charts/"

# Solo Enterprise, the write-up's charts: installed only when `k8s up --license FILE` is given.
ENTERPRISE_AGENTGATEWAY = "2.1.0"
ENTERPRISE_AGENTGATEWAY_CHARTS = "oci://us-docker.pkg.dev/solo-public/enterprise-agentgateway/charts"
KAGENT_ENTERPRISE = "0.4.0"
KAGENT_ENTERPRISE_CHARTS = "oci://us-docker.pkg.dev/solo-public/kagent-enterprise-helm/charts"

# The image's root filesystem rebuilt from Debian packages (`k8s/rootfs.py`, tests/k8s/test_rootfs.py).
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_GLIBC = (2, 36)  # bookworm's: the newest manylinux wheels its Python can load
DEBIAN_PYTHON = "3.11"  # bookworm's python3, the same minor version as PYTHON_IMAGE
