"""What a container runtime does at start: pull the pod's image tag and check the bytes against the digest.

Inside an embedded pod the runtime sets the image reference and the store's
location; `serve` then runs whatever build the tag resolves to at that moment.
Outside a pod (no store given) there is nothing to pull and the caller picks
the build. A tag that is missing, names another workload, or whose bytes no
longer hash to its digest does not run: that is ErrImagePull, not a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping

from trustusbank.env import IMAGE, IMAGE_STORE
from trustusbank.images.store import ImageStore, ImageStoreError, Resolved


def pull(workload: str, env: Mapping[str, str] | None = None) -> Resolved | None:
    """The pod's image as the store resolves it now; None when no store is configured."""
    root, ref = IMAGE_STORE.read(env), IMAGE.read(env)
    if root is None:
        return None
    if ref is None:
        raise ImageStoreError(f"{IMAGE_STORE.name} is set but {IMAGE.name} (the image to pull) is not")
    resolved = ImageStore(root, readonly=True).resolve(ref)
    if resolved.build.workload != workload:
        raise ImageStoreError(f"image {ref} is a {resolved.build.workload} build, not {workload}")
    actual = resolved.build.digest()
    if actual != resolved.digest:
        raise ImageStoreError(
            f"image {ref}: the bytes of {resolved.build} hash to {actual}, not to {resolved.digest};"
            " push the build again (`trustusbank up` does)"
        )
    return resolved
