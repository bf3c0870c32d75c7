"""A build's digest: sha256 over the bytes of the modules it runs.

Same tag, new bytes, new digest: that is how a pinned registry entry catches a
rug pull that leaves every manifest and every tool name unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from trustusbank.images.builds import ImageBuilds


def module_source(module: str) -> bytes:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"module {module} of the image cannot be found")
    return Path(spec.origin).read_bytes()


def build_digest(image: ImageBuilds, variant: str) -> str:
    h = hashlib.sha256()
    for module in sorted(image.image_modules(variant)):
        source = module_source(module)
        h.update(f"{module}\0{len(source)}\0".encode())
        h.update(source)
    return f"sha256:{h.hexdigest()}"
