"""The Kubernetes manifest bundle under `deploy/`, parsed into typed, validated objects.

The bundle is the single description of the system; everything else reads it
through this package, so a mistake in it is reported once, with file and line.
"""

from __future__ import annotations

from trustusbank.manifests.bundle import CHECKS, Bundle, CheckReport, check_bundle, load_bundle
from trustusbank.manifests.core import (
    ConfigMap,
    Container,
    ContainerPort,
    Deployment,
    LabelSelector,
    Namespace,
    Service,
    ServiceAccount,
    ServicePort,
)
from trustusbank.manifests.kinds import KINDS, KindSpec, kubernetes_schema
from trustusbank.manifests.manifest import Manifest, ManifestError, Problem, Source

__all__ = [
    "CHECKS",
    "KINDS",
    "Bundle",
    "CheckReport",
    "ConfigMap",
    "Container",
    "ContainerPort",
    "Deployment",
    "KindSpec",
    "LabelSelector",
    "Manifest",
    "ManifestError",
    "Namespace",
    "Problem",
    "Service",
    "ServiceAccount",
    "ServicePort",
    "Source",
    "check_bundle",
    "kubernetes_schema",
    "load_bundle",
]
