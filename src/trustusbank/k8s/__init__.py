"""Kubernetes mode: the same `deploy/` on a real cluster with Istio ambient, agentgateway and kagent.

The embedded runtime (`runtime/`) and this package are the two orchestrators of the one
description in `deploy/`: this one installs the real engines (kind, Helm releases, CRDs),
applies the manifests phase by phase, builds the one image every workload runs, and drives
the story through kubectl. Nothing here is imported by the embedded runtime.
"""
