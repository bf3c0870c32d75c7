"""A node proxy's policy set when a file in it is garbled, emptied or replaced mid-read.

Real files: deploy/ and the defence set applied next to it, read by the node's PolicyStore;
each decision goes through the node's own decision function. What must never happen is a
change that cannot be read ending with fewer DENY rules in force: the last good set stays (as
ztunnel keeps its last xDS state) and the refusal is logged; a node that never read a good
set denies everything.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

import pytest

import trustusbank.manifests.bundle as bundle_module
from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.manifests.istio.objects import Connection, Workload
from trustusbank.manifests.yaml_source import yaml_files
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.ztunnel.policy_store import PolicyStore, decide
from trustusbank.runtime.apply import apply

DENY = "external-attacker/deny-bank-to-attacker"
FILE = "deny-bank-to-attacker.yaml"
EXFIL = Connection(
    SpiffeId("cluster.local", "trustusbank-bank-vendors", "currency-converter"),
    ipaddress.ip_address("10.0.1.5"),
    ipaddress.ip_address("10.0.9.9"),
    8080,
)
ATTACKER = Workload("exfil-collector", "external-attacker", {"app": "exfil-collector"})


@pytest.fixture
def files(tmp_path: Path) -> ClusterFiles:
    files = ClusterFiles(tmp_path / "state")
    apply(files, DEPLOY, [DEPLOY / "08-defence"])
    return files


def loaded(files: ClusterFiles) -> PolicyStore:
    store = PolicyStore(DEPLOY, files)
    assert store.reload_if_changed()
    assert store.error is None
    assert decide(store, EXFIL, ATTACKER).policy == DENY
    return store


def denies_as_before(store: PolicyStore) -> None:
    decision = decide(store, EXFIL, ATTACKER)
    assert not decision.allowed
    assert decision.policy == DENY
    assert DENY in {p.ref for p in store.authorization}


@pytest.mark.parametrize(
    "damage",
    [
        "kind: [unclosed\n",  # not YAML
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: deny-bank-to-attacker, namespace: external-attacker}\n"
        "spec: {action: MAYBE}\n",  # YAML, but not a valid policy
        "",  # emptied: a write cut short
    ],
    ids=["garbled", "invalid", "emptied"],
)
def test_a_policy_file_that_becomes_unreadable_keeps_the_last_good_set(
    files: ClusterFiles, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = loaded(files)
    good = (files.applied / FILE).read_text()
    (files.applied / FILE).write_text(damage)  # by hand, past `apply`'s validation

    with caplog.at_level(logging.ERROR):
        assert store.reload_if_changed()
    denies_as_before(store)
    assert store.error is None
    assert store.refused is not None
    assert store.refused.startswith("policy set unreadable, keeping the last good one:")
    assert FILE in store.refused
    assert store.refused in caplog.text

    (files.applied / FILE).write_text(good)  # mended: read again, refusal over
    assert store.reload_if_changed()
    assert store.refused is None
    denies_as_before(store)


def test_a_node_that_never_read_a_good_set_denies_everything(files: ClusterFiles) -> None:
    (files.applied / FILE).write_text("kind: [unclosed\n")
    store = PolicyStore(DEPLOY, files)
    assert store.reload_if_changed()
    assert store.error is not None
    assert store.error.startswith("policy set unreadable, denying all:")
    allowed_before = Connection(EXFIL.source_identity, EXFIL.source_ip, EXFIL.destination_ip, 9090)
    assert not decide(store, allowed_before, Workload("anything", "default")).allowed


def test_a_file_replaced_mid_read_loads_the_old_or_the_new_never_neither(
    files: ClusterFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`apply` replaces the file (a rename) after the node listed it, before it read it."""
    store = loaded(files)
    newer = tmp_path / FILE
    newer.write_text((files.applied / FILE).read_text().replace('"trustusbank-platform"', '"trustusbank-*"'))
    replaced: list[Path] = []

    def listing_then_replace(path: Path) -> list[Path]:
        found = yaml_files(path)
        if path == files.applied and not replaced:
            replaced.extend(apply(files, DEPLOY, [newer]))
        return found

    monkeypatch.setattr(bundle_module, "yaml_files", listing_then_replace)
    os.utime(files.applied / FILE, ns=(0, 0))  # a change the node notices, which sets it reading
    assert store.reload_if_changed()

    assert replaced == [files.applied / FILE]
    denies_as_before(store)
    [policy] = [p for p in store.authorization if p.ref == DENY]
    assert "trustusbank-*" in str(policy)  # the new version, read whole
