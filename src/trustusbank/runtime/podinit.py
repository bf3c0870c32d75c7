"""The first process of an isolated pod (what runc is to a kind node), and `exec`'s way in.

`python -m trustusbank.runtime.podinit start '<spec>'`: join the network namespace
the runtime made for the pod (where the node proxy already listens), unshare mount,
PID, UTS and IPC namespaces, fork the pod's PID 1, build and enter its root
filesystem, take the pod's uid, and exec the container's command. This process stays
outside, forwards stop signals and exits with the pod's status, so the supervisor
manages it like any other process. A pod forked from the zygote (`runtime/zygote.py`)
is born straight into its new PID namespace, so there is no process outside to keep: the
zygote's child is the pod's PID 1 and runs `pid_1`, with the entry point in place of the exec.

`python -m trustusbank.runtime.podinit enter '<spec>'`: join every namespace of a
running pod's PID 1 and run a command there with the pod's uid (`kubectl exec`).

Stdlib and `trustusbank.kernel` only: it runs before every pod, and must start fast.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from trustusbank.kernel import rootfs
from trustusbank.kernel.syscalls import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    die_with_parent,
    prctl,
    sethostname,
    setns,
    unshare,
)

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
# Joined in this order: the user namespace first (it grants the rights to join the others),
# the mount namespace last (it changes the root the other /proc paths are read from).
ENTER_ORDER = (
    ("user", CLONE_NEWUSER),
    ("net", CLONE_NEWNET),
    ("uts", CLONE_NEWUTS),
    ("ipc", CLONE_NEWIPC),
    ("pid", CLONE_NEWPID),
    ("mnt", CLONE_NEWNS),
)


def _become(uid: int | None, gid: int | None) -> None:
    """Take the pod's own uid (root runtimes), and never gain privileges again."""
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _chown_tree(top: str, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for parent, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(parent, name), uid, gid)


def _wait_forwarding(child: int) -> int:
    """Wait for `child`, passing stop signals on; return its exit code as a shell would."""
    for sig in FORWARDED:
        signal.signal(sig, lambda number, _frame: os.kill(child, number))
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status) if status >= 0 else 1


def _redirect(nft: str, rules: str) -> None:
    """Install the in-pod capture rules in the namespace we just joined (as istio-cni does).

    Refused rules stop the pod: it must not run with less capture than it was promised.
    """
    import subprocess  # only pods with transparent capture pay for the import

    done = subprocess.run([nft, "-f", "-"], input=rules, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"podinit: nftables refused the capture rules: {done.stderr.strip()}", file=sys.stderr)
        sys.exit(126)


def _bound_to_parent(lifeline: int) -> None:
    """Die with podinit; and if it died already (before we asked), leave now.

    A pod's PID 1 cannot ask getppid() (its parent is outside its PID namespace), so it
    watches a pipe whose only writer is podinit: readable means closed, closed means gone.
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([lifeline], [], [], 0)[0]:
        os._exit(137)


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def _exec(argv: list[str]) -> NoReturn:
    os.execve(argv[0], argv, os.environ)


def start(spec: dict[str, Any], run: Callable[[list[str]], NoReturn] = _exec) -> int:
    """Start the pod in its namespaces; return its exit status once it ends.

    `run` becomes the pod's PID 1 with the pod's root, hostname, cwd and uid: by default it
    execs `argv`.
    """
    die_with_parent(signal.SIGKILL, spec.get("parent"))  # the pod ends with its supervisor
    netns = int(spec["netns_fd"])
    setns(netns, CLONE_NEWNET)
    os.close(netns)
    if spec.get("nft_rules"):
        _redirect(spec.get("nft") or "nft", spec["nft_rules"])
    unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC)
    lifeline, held = os.pipe()  # we hold the write end; EOF on it tells the child we are gone
    child = os.fork()
    if child:
        os.close(lifeline)
        return _exit_code(_wait_forwarding(child))
    os.close(held)
    pid_1({**spec, "joined": True}, lifeline, run)


def pid_1(spec: dict[str, Any], lifeline: int, run: Callable[[list[str]], NoReturn]) -> NoReturn:
    """Be the pod's PID 1 (already in its PID and network namespaces): its own mount, UTS and
    IPC namespaces, its root, hostname, cwd and uid, then `run`. Dies with whatever holds the
    write end of `lifeline` (podinit, or the zygote that forked it straight into its namespace)."""
    try:
        _bound_to_parent(lifeline)
        if not spec.get("joined"):  # podinit unshared these before the fork; a zygote's child not yet
            netns = int(spec["netns_fd"])
            setns(netns, CLONE_NEWNET)
            os.close(netns)
            if spec.get("nft_rules"):
                _redirect(spec.get("nft") or "nft", spec["nft_rules"])
            unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC)
        uid, gid = spec.get("uid"), spec.get("gid")
        if uid is not None and gid is not None:
            for path in spec["chown"]:
                _chown_tree(path, uid, gid)
        root = rootfs.RootFs.from_dict(spec["rootfs"])
        rootfs.assemble(root)
        rootfs.enter(root)
        sethostname(spec["hostname"])
        os.chdir(spec["cwd"])
        _become(uid, gid)
        _bound_to_parent(lifeline)  # again: the uid change cleared it
        run(spec["argv"])
    except BaseException as exc:
        print(f"podinit: cannot start the pod: {exc}", file=sys.stderr, flush=True)
        os._exit(126)


def _uid_gid(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        fields = dict(line.split(":", 1) for line in status.read().splitlines())
    return int(fields["Uid"].split()[1]), int(fields["Gid"].split()[1])


def enter(spec: dict[str, Any]) -> int:
    pid = int(spec["pid"])
    uid, gid = _uid_gid(pid)  # as the host sees them, like our own uid before we join anything
    change = uid != os.getuid()  # a root runtime's pod uid; a user-namespace runtime's pods are us
    mine = {name: os.stat(f"/proc/self/ns/{name}").st_ino for name, _ in ENTER_ORDER}
    handles = []
    for name, kind in ENTER_ORDER:
        path = f"/proc/{pid}/ns/{name}"
        if os.stat(path).st_ino != mine[name]:  # joining one's own user namespace is refused
            handles.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), kind))
    for fd, kind in handles:
        setns(fd, kind)
        os.close(fd)
    child = os.fork()  # only a child is born into the joined PID namespace
    if child:
        return _exit_code(_wait_forwarding(child))
    try:
        os.chdir(spec["cwd"])
        _become(uid if change else None, gid if change else None)
        argv: list[str] = spec["argv"]
        os.execvpe(argv[0], argv, os.environ)
    except FileNotFoundError:
        print(f"exec: command not found in the pod: {spec['argv'][0]}", file=sys.stderr, flush=True)
        os._exit(127)
    except BaseException as exc:
        print(f"exec: cannot run in the pod: {exc}", file=sys.stderr, flush=True)
        os._exit(126)


def main(args: Sequence[str]) -> int:
    if len(args) != 2 or args[0] not in ("start", "enter"):
        print("usage: python -m trustusbank.runtime.podinit start|enter '<json spec>'", file=sys.stderr)
        return 2
    spec = json.loads(args[1])
    return start(spec) if args[0] == "start" else enter(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
