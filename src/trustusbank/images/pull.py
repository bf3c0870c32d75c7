"""What a container runtime does at start: pull the pod's image tag and check the bytes against the digest.

Inside an embedded pod the runtime sets the image reference and the store's
location; `serve` then runs whatever build the tag resolves to at that moment.
Outside a pod (no store given) there is nothing to pull and the caller picks
the build. A tag that is missing, names another workload, or whose bytes no
longer hash to its digest does not run: that is ErrImagePull, not a fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from trustusbank.images.store import IMAGE_ENV, IMAGE_STORE_ENV, ImageStore, ImageStoreError, Resolved


def pull(workload: str, env: Mapping[str, str] | None = None) -> Resolved | None:
    """The pod's image as the store resolves it now; None when no store is configured."""
    env = os.environ if env is None else env
    root, ref = env.get(IMAGE_STORE_ENV), env.get(IMAGE_ENV)
    if not root:
        return None
    if not ref:
        raise ImageStoreError(f"{IMAGE_STORE_ENV} is set but {IMAGE_ENV} (the image to pull) is not")
    resolved = ImageStore(Path(root), readonly=True).resolve(ref)
    if resolved.build.workload != workload:
        raise ImageStoreError(f"image {ref} is a {resolved.build.workload} build, not {workload}")
    actual = resolved.build.digest()
    if actual != resolved.digest:
        raise ImageStoreError(
            f"image {ref}: the bytes of {resolved.build} hash to {actual}, not to {resolved.digest};"
            " push the build again (`trustusbank up` does)"
        )
    return resolved
