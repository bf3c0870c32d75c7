"""A pod's root filesystem: only what its image and volumes give it, then pivot_root into it.

Runs in the pod's own mount namespace, before the app starts. The new root is a
tmpfs holding the host's system directories read-only (the "image": /usr, /etc,
the Python installation and the package), the pod's own directory read-write, a
private /tmp, a fresh /proc for the pod's PID namespace and a handful of device
nodes. Paths keep their host names, so configuration means the same in and out.
Everything else (the cluster state, the CA and SVID keys, node tokens, the
policy store, other pods' files, the operator's home) does not exist in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trustusbank.kernel.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    mount,
    pivot_root,
    umount,
)

DEVICES = ("null", "zero", "full", "random", "urandom")
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
OLD_ROOT = ".old-root"


@dataclass(frozen=True)
class RootFs:
    """What a pod sees: `readonly` and `writable` host paths, at the same paths inside."""

    mountpoint: str  # an empty host directory the new root is built on
    readonly: tuple[str, ...]
    writable: tuple[str, ...]
    size: str = "16m"  # the tmpfs that holds the root's own directories

    def to_dict(self) -> dict[str, object]:
        return {
            "mountpoint": self.mountpoint,
            "readonly": list(self.readonly),
            "writable": list(self.writable),
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> RootFs:
        readonly, writable = raw["readonly"], raw["writable"]
        assert isinstance(readonly, list)
        assert isinstance(writable, list)
        return cls(str(raw["mountpoint"]), tuple(readonly), tuple(writable), str(raw["size"]))


def system_paths() -> tuple[str, ...]:
    """The host's system directories that exist (merged-/usr hosts make most of them links)."""
    return tuple(p for p in SYSTEM_DIRS if os.path.lexists(p))


def _locked_flags(path: str) -> int:
    """The flags a bind mount of `path` must keep: an unprivileged remount may not drop them."""
    found = os.statvfs(path).f_flag
    keep = 0
    for st, ms in (
        (os.ST_NOSUID, MS_NOSUID),
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME),
        (os.ST_NODIRATIME, MS_NODIRATIME),
        (os.ST_RELATIME, MS_RELATIME),
    ):
        if found & st:
            keep |= ms
    return keep


def _target(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _bind(root: str, path: str, readonly: bool) -> None:
    """Bind host `path` at the same path under `root`; a host symlink is recreated as a symlink."""
    target = _target(root, path)
    if os.path.islink(path) and path in SYSTEM_DIRS:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Path(target).touch()
    mount(path, target, None, MS_BIND | MS_REC)
    if readonly:
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | _locked_flags(path)
        mount(None, target, None, flags)


def _devices(root: str) -> None:
    dev = _target(root, "/dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in DEVICES:
        node = os.path.join(dev, name)
        Path(node).touch()
        mount(f"/dev/{name}", node, None, MS_BIND)
    os.symlink("/proc/self/fd", os.path.join(dev, "fd"))
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{number}", os.path.join(dev, name))
    shm = os.path.join(dev, "shm")
    os.makedirs(shm)
    mount("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=16m")


def assemble(spec: RootFs) -> None:
    """Build the new root under `spec.mountpoint`; call in a private mount namespace, as PID 1."""
    root = spec.mountpoint
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0755,size={spec.size}")
    # The pod's own mounts first: a host path bound below may live under /tmp (a state dir).
    proc = _target(root, "/proc")
    os.makedirs(proc, exist_ok=True)
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    tmp = _target(root, "/tmp")
    os.makedirs(tmp, exist_ok=True)
    mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    _devices(root)
    for path in spec.readonly:
        _bind(root, path, readonly=True)
    for path in spec.writable:
        _bind(root, path, readonly=False)


def enter(spec: RootFs) -> None:
    """pivot_root into the assembled root and drop every trace of the host's tree."""
    root = spec.mountpoint
    old = os.path.join(root, OLD_ROOT)
    os.makedirs(old, exist_ok=True)
    pivot_root(root, old)
    os.chdir("/")
    umount("/" + OLD_ROOT, MNT_DETACH)
    os.rmdir("/" + OLD_ROOT)
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
