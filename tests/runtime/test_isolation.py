"""The isolation mode: decided once, said plainly, and never a silent downgrade when asked for."""

from __future__ import annotations

import os

import pytest

from trustusbank.env import SettingError
from trustusbank.runtime import isolation
from trustusbank.runtime.isolation import COOPERATIVE, NAMESPACES, IsolationUnavailable, prepare


def test_cooperative_when_asked_and_labelled_no_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ISOLATION", "cooperative")
    mode = prepare()
    assert (mode.mode, mode.isolated, mode.pod_uids) == (COOPERATIVE, False, False)
    assert "NOT a security boundary" in mode.describe()
    assert mode.to_dict()["summary"] == mode.describe()


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, namespaces are had directly")
def test_root_gets_namespaces_and_per_pod_uids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ISOLATION", "auto")
    mode = prepare()
    assert (mode.mode, mode.via, mode.pod_uids) == (NAMESPACES, "root", True)
    assert "own uid" in mode.describe()


def test_namespaces_asked_for_but_refused_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ISOLATION", "namespaces")
    monkeypatch.setattr(isolation, "_probe", lambda user: "Operation not permitted")
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 0)
    with pytest.raises(IsolationUnavailable, match="Operation not permitted"):
        prepare()


def test_auto_falls_back_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ISOLATION", "auto")
    monkeypatch.setattr(isolation, "_probe", lambda user: "user namespaces are disabled")
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    mode = prepare()
    assert mode.mode == COOPERATIVE
    assert "no unprivileged user namespace: user namespaces are disabled" in mode.describe()


def test_not_linux_is_cooperative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ISOLATION", "auto")
    monkeypatch.setattr(isolation.sys, "platform", "darwin")
    assert "darwin has no Linux namespaces" in prepare().describe()


def test_a_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ISOLATION", "containers")
    with pytest.raises(SettingError, match="TRUSTUSBANK_ISOLATION"):
        prepare()


@pytest.mark.skipif(os.geteuid() != 0, reason="the probe as root")
def test_the_probe_really_asks_the_kernel() -> None:
    assert isolation._probe(user=False) is None
