"""Every version Kubernetes mode installs or builds on, pinned in one place.

Bumping one is a one-line change here; the installer, the image build, the docs and the
tests read them from this module.
"""

from __future__ import annotations

# The image every workload runs (`trustusbank serve <workload>` is its entry point).
PYTHON_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
DEBIAN_SUITE = "bookworm"
REGISTRY = "localhost:5001"  # the write-up's local registry, beside the kind cluster
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_GLIBC = (2, 36)  # bookworm's: the newest manylinux wheels its Python can load
DEBIAN_PYTHON = "3.11"  # bookworm's python3, the same minor version as PYTHON_IMAGE
