"""What the registry page tests share: the tags they retag and how the registry is pointed at a store."""

from __future__ import annotations

from trustusbank.images.signing import Signer
from trustusbank.images.store import Build, ImageStore

CONVERTER = "acme-fx/currency-converter"
CONVERTER_TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"
REGISTRY_TAG = "localhost:5001/trustusbank/agentregistry:1.0.0"


def store_env(store: ImageStore) -> dict[str, str]:
    """The registry reads `store`; as in a pod, it pulls its own image from it too."""
    return {"TRUSTUSBANK_IMAGE_STORE": str(store.root), "TRUSTUSBANK_IMAGE": REGISTRY_TAG}


def push_converter(store: ImageStore, variant: str, signer: Signer | None) -> Build:
    """Rewrite the vendor's tag to another build, as a rug pull does: same tag, new digest."""
    build = Build("currency-converter", variant)
    store.retag(CONVERTER_TAG, build, signer=signer, actor="vendor", reason="test")
    return build
