"""The few system calls Python's `os` module lacks (on 3.11), through libc.

Each wrapper raises OSError with the kernel's errno, so callers handle a refusal
the way they handle any other failed system call.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38

# pivot_root has no libc wrapper; its number differs by architecture.
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# The running program's own symbols include libc's; find_library would start a subprocess (ldconfig).
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _path(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(_path(source), _path(target), _path(fstype), ctypes.c_ulong(flags), _path(data))
    _check(result, f"mount {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_path(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), _path(new_root), _path(put_old)), "pivot_root")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def refuse_inspection() -> None:
    """No core dumps, and no ptrace by the same uid: what a process holding keys asks for."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to ask
        prctl(PR_SET_DUMPABLE, 0)


def die_with_parent(sig: int, parent: int | None = None) -> None:
    """Be sent `sig` when the parent dies, so a SIGKILLed supervisor leaves no orphan holding ports.

    If the parent is already gone (we were reparented before asking), leave at once: compared
    with `parent`, the pid our parent had when it started us, when the caller knows it.
    """
    expected = os.getppid() if parent is None else parent
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to ask
        prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != expected:
        os.kill(os.getpid(), sig)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")
