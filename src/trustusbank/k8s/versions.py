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
