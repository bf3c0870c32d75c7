"""agentregistry's view of a tag: the digest it runs now, against the pin, and who really signed it."""

from __future__ import annotations

from pathlib import Path

from trustusbank.images.signing import Keys, public_key_pem
from trustusbank.images.store import Build, ImageStore
from trustusbank.workloads.agentregistry.catalogue import running_image

TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"
CLEAN = Build("currency-converter", "clean")


def entry(pinned: str) -> dict:
    return {"image": TAG, "pinned": {"digest": pinned}}


def scanned(pinned: Build, *builds: Build) -> dict:
    """An entry whose registry listed these builds' tools; each build's tool-list hash is made up."""
    listed = [{"digest": b.digest(), "tool_list_hash": f"tools-of-{b.variant}"} for b in builds]
    return {
        "image": TAG,
        "pinned": {"digest": pinned.digest(), "tool_list_hash": f"tools-of-{pinned.variant}"},
        "builds": listed,
    }


def test_running_digest_pin_and_signature_follow_the_store(tmp_path: Path) -> None:
    store, keys = ImageStore(tmp_path / "images"), Keys(tmp_path / "signing", tmp_path / "images")
    clean = store.retag(TAG, CLEAN, signer=keys.org(), actor="a", reason="r").new_digest
    view = running_image(store.root, entry(clean))
    assert view["running"]["digest"] == clean
    assert view["matches_pin"] is True
    assert view["signature"]["status"] == "org"

    rug = Build("currency-converter", "real-rugpull")
    store.retag(TAG, rug, signer=keys.red_team(), actor="m", reason="r")
    view = running_image(store.root, entry(clean))
    assert view["running"]["digest"] == rug.digest()
    assert view["matches_pin"] is False
    assert view["signature"]["status"] == "untrusted"

    store.retag(TAG, Build("currency-converter", "mock-rugpull"), signer=None, actor="m", reason="r")
    assert running_image(store.root, entry(clean))["signature"]["status"] == "unsigned"


def test_the_verdict_comes_from_the_published_key_not_from_labels(tmp_path: Path) -> None:
    store, keys = ImageStore(tmp_path / "images"), Keys(tmp_path / "signing", tmp_path / "images")
    clean = store.retag(TAG, CLEAN, signer=keys.org(), actor="a", reason="r").new_digest
    (store.root / "org.pub").write_bytes(public_key_pem(keys.red_team().public_key))  # someone else's key
    view = running_image(store.root, entry(clean))
    assert view["signature"]["status"] == "untrusted"  # the record still says "trustusbank org"


def test_no_store_or_no_tag_is_said_plainly(tmp_path: Path) -> None:
    assert running_image(None, entry("sha256:x"))["signature"]["status"] == "not-checked"
    ImageStore(tmp_path / "images")
    Keys(tmp_path / "signing", tmp_path / "images").org()
    missing = running_image(tmp_path / "images", entry("sha256:x"))
    assert missing["running"] is None
    assert missing["signature"]["status"] == "not-found"


def test_the_running_tool_list_is_the_scanned_one_of_the_running_digest(tmp_path: Path) -> None:
    store, keys = ImageStore(tmp_path / "images"), Keys(tmp_path / "signing", tmp_path / "images")
    store.retag(TAG, CLEAN, signer=keys.org(), actor="a", reason="r")
    mock, real = Build("currency-converter", "mock-rugpull"), Build("currency-converter", "real-rugpull")
    view = running_image(store.root, scanned(CLEAN, CLEAN, mock))
    assert view["running"]["tool_list_hash"] == "tools-of-clean"
    assert view["tool_list_matches_pin"] is True

    store.retag(TAG, mock, signer=None, actor="m", reason="r")
    view = running_image(store.root, scanned(CLEAN, CLEAN, mock))
    assert view["running"]["tool_list_hash"] == "tools-of-mock-rugpull"
    assert view["tool_list_matches_pin"] is False

    store.retag(TAG, real, signer=None, actor="m", reason="r")  # a digest the registry never scanned
    view = running_image(store.root, scanned(CLEAN, CLEAN, mock))
    assert view["running"]["tool_list_hash"] is None
    assert view["tool_list_matches_pin"] is False
    assert running_image(None, scanned(CLEAN, CLEAN))["tool_list_matches_pin"] is None
