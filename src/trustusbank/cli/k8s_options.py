"""The `--k8s` and `--context` options, apart from what they drive, so that a command that
offers them imports Kubernetes mode only when it is asked for (`cli/k8s_story.py`)."""

from __future__ import annotations

from typing import Annotated

import typer

K8s = Annotated[bool, typer.Option("--k8s", help="On the Kubernetes cluster `trustusbank k8s up` installed.")]
K8sContext = Annotated[
    str | None,
    typer.Option("--context", help="With --k8s: the kubeconfig context (default: the one `k8s up` used)."),
]
