"""The image's root filesystem from Debian packages, and a workload run from it: proof without an engine.

CI has no docker or podman, so the image is proven by rebuilding what the Containerfile makes on
the same Debian release: `mmdebstrap` lays down bookworm with its Python 3.11, the project's
wheel and its dependencies' wheels go into `/opt/trustusbank` by the Containerfile's own venv
lines (`image.VENV_STEPS`), and `deploy/` goes where the image keeps it. A workload then starts
from it as the image's config says (`image.read_containerfile`: environment, user, directory;
the converter's build by `CONVERTER_BUILD`), chrooted, in mount and PID namespaces of its own,
with no environment from the host. It shares the host's network so a test can reach it on
127.0.0.1: a pod would have a network namespace; that part is the mesh's, tested elsewhere.

Building takes about two minutes from nothing, so both layers are cached under a directory the
caller gives: the Debian base by its package list, the installed image by the bytes of the build
context (one build at a time, under a lock on that directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trustusbank.errors import OperationError, UnavailableError
from trustusbank.k8s.image import CONTAINERFILE, VENV_STEPS, WHEELS_DIR, ImageConfig, read_containerfile
from trustusbank.k8s.versions import DEBIAN_GLIBC, DEBIAN_MIRROR, DEBIAN_PYTHON, DEBIAN_SUITE

VARIANT = "essential"
PACKAGES = ("python3", "python3-venv")
TOOLS = ("mmdebstrap", "unshare", "chroot")
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


class RootfsUnavailable(UnavailableError, RuntimeError):
    """This machine cannot build or run the rootfs (not root, or a tool is missing)."""


class RootfsFailed(OperationError, RuntimeError):
    """A build step failed, or a workload exited before it listened; the message has its output."""


def missing() -> list[str]:
    """Why the rootfs cannot be built and run here; empty when it can."""
    reasons = [f"{tool} is not on PATH" for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        reasons.append("not root (mmdebstrap, chroot and unshare --pid need it)")
    return reasons


def _run(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
    done = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RootfsFailed(f"`{' '.join(argv)}` exited with {done.returncode}:\n{done.stdout[-4000:]}")


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _replace_atomically(built: Path, final: Path) -> Path:
    """Publish a finished build; if another process won the race, keep theirs."""
    try:
        built.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(built)
    return final


def debian_base(cache: Path) -> Path:
    """bookworm with python3 and python3-venv, built once per package list."""
    final = cache / f"debian-{DEBIAN_SUITE}-{_key(VARIANT, PACKAGES, DEBIAN_MIRROR)}"
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".building-{final.name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        packages = f"--include={','.join(PACKAGES)}"
        _run(["mmdebstrap", f"--variant={VARIANT}", packages, DEBIAN_SUITE, str(work), DEBIAN_MIRROR])
        return _replace_atomically(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def project_wheel(project: Path, out: Path) -> Path:
    """The project's wheel, as `pip wheel --no-deps .` builds it."""
    out.mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(project)]
    )
    wheels = sorted(out.glob("trustusbank-*.whl"))
    if len(wheels) != 1:
        raise RootfsFailed(f"expected one trustusbank wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


CONTEXT = ("Containerfile", "pyproject.toml", "README.md", "src", "deploy")
"""What the build reads of the checkout (the .containerignore lets in no more)."""


def _ignored(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc" or path.parent.name.endswith(".egg-info")


def context_digest(project: Path) -> str:
    """Over every path and byte of the build context: same sources, same image."""
    digest = hashlib.sha256()
    for name in CONTEXT:
        top = project / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if not _ignored(path.relative_to(project)):
                digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _platforms() -> list[str]:
    """Every manylinux tag bookworm's glibc loads, newest first (pip does not widen `--platform`)."""
    arch = platform.machine()
    major, newest = DEBIAN_GLIBC
    tags = [f"manylinux_{major}_{minor}_{arch}" for minor in range(newest, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for minor, name in legacy.items() if minor <= newest]
    return tags


def download_dependencies(wheel: Path, dest: Path) -> None:
    """The wheels the project's wheel needs, for bookworm's Python, whatever Python runs this."""
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), "--only-binary=:all:"]
    argv += [
        "--python-version",
        DEBIAN_PYTHON,
        "--implementation",
        "cp",
        "--abi",
        f"cp{DEBIAN_PYTHON.replace('.', '')}",
    ]
    for tag in _platforms():
        argv += ["--platform", tag]
    _run([*argv, str(wheel)])


def _chroot(root: Path, command: str) -> None:
    _run(["chroot", str(root), "/bin/sh", "-c", command], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def _user_ids(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or not (gid or uid).isdigit():
        raise RootfsFailed(f"the image's USER must be numeric uid:gid to run chrooted, got {user!r}")
    return int(uid), int(gid or uid)


@dataclass(frozen=True)
class ImageRootfs:
    """An installed image root filesystem, and the Containerfile whose config runs it."""

    path: Path
    containerfile: Path


def build_image_rootfs(cache: Path, project: Path) -> ImageRootfs:
    """The image's filesystem for the checkout at `project`, rebuilt only when its sources change."""
    reasons = missing()
    if reasons:
        raise RootfsUnavailable(f"cannot build the image rootfs here: {'; '.join(reasons)}")
    containerfile = project / CONTAINERFILE
    config = read_containerfile(containerfile)
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        # One builder at a time (pytest-xdist workers share the cache): the others wait, then reuse.
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_image_rootfs(cache, project, containerfile, config)


def _build_image_rootfs(cache: Path, project: Path, containerfile: Path, config: ImageConfig) -> ImageRootfs:
    for stale in [*cache.glob(".building-*"), *cache.glob(".wheel-*")]:  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    base = debian_base(cache)
    final = cache / f"image-{_key(base.name, context_digest(project), VENV_STEPS)}"
    if final.is_dir():
        return ImageRootfs(final, containerfile)
    scratch = cache / f".wheel-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    work = cache / f".building-{final.name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        wheel = project_wheel(project, scratch)
        _run(["cp", "-a", str(base), str(work)])
        wheels = work / WHEELS_DIR.relative_to("/")
        wheels.mkdir()
        shutil.copy2(wheel, wheels)
        download_dependencies(wheel, wheels)
        _chroot(work, " && ".join(VENV_STEPS))
        shutil.rmtree(wheels)
        _install_files(work, project, config)
        _replace_atomically(work, final)
        _prune(cache, keep={base.name, final.name})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return ImageRootfs(final, containerfile)


def _install_files(root: Path, project: Path, config: ImageConfig) -> None:
    """What the Containerfile's final stage adds besides the venv: the manifests and the state dir."""
    deploy = root / config.env["TRUSTUSBANK_DEPLOY_DIR"].lstrip("/")
    shutil.copytree(project / "deploy", deploy)
    state = root / config.env["TRUSTUSBANK_STATE_DIR"].lstrip("/")
    state.mkdir(parents=True, mode=0o750)
    uid, gid = _user_ids(config.user)
    os.chown(state, uid, gid)


def _prune(cache: Path, keep: set[str]) -> None:
    """An installed image is about 430 MB; only the newest is kept."""
    for old in cache.glob("image-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


STOP_WAIT = 10.0  # seconds for `unshare` to reap its killed child and exit


@dataclass
class Workload:
    """A workload running from the rootfs: `proc` is its `unshare`, `url` where it listens."""

    name: str
    proc: subprocess.Popen[str]
    url: str = ""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    def tail(self) -> str:
        return "".join(self.log)

    def server_pid(self) -> int:
        """The server process: the child `unshare --fork` started (PID 1 of its namespace)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        if len(children) != 1:
            raise RootfsFailed(f"{self.name}: expected one child of unshare, found {children}")
        return int(children[0])

    def stop(self) -> None:
        """SIGKILL to the namespace's PID 1 (the kernel ends the rest); `unshare` reaps it and exits.

        `--kill-child` is not enough: `chroot --userspec` changes the server's uid, and a
        credential change clears the death signal `unshare` had set for it.
        """
        if self.proc.poll() is None:
            try:
                os.kill(self.server_pid(), signal.SIGKILL)
            except (OSError, RootfsFailed):
                pass
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(STOP_WAIT)
            if self.proc.poll() is None:
                self.proc.kill()
        self.proc.wait()


def serve(
    image: ImageRootfs,
    workload: str,
    *,
    converter_build: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Workload:
    """Start `trustusbank serve <workload>` from the rootfs as the image would run it, on 127.0.0.1.

    The environment is the image's (plus `env`, as a Deployment's `env:` adds), nothing of ours;
    the port is the one the server binds and reports (`--port 0`), so no other process can take it.
    """
    config = read_containerfile(image.containerfile, converter_build)
    _user_ids(config.user)
    variables = [f"{k}={v}" for k, v in {**config.env, **(env or {})}.items()]
    argv = ["unshare", "--mount", "--pid", "--kill-child", f"--mount-proc={image.path / 'proc'}"]
    argv += ["chroot", f"--userspec={config.user}", str(image.path)]
    argv += ["/usr/bin/env", "-i", f"--chdir={config.workdir}", *variables]
    argv += [*config.entrypoint, workload, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", os.defpath)},
    )
    running = Workload(workload, proc)
    listening = threading.Event()

    def drain() -> None:  # keeps reading, so a chatty server never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            running.log.append(line)
            match = LISTENING.search(line)
            if match and not running.url:
                running.url = match.group(1)
                listening.set()
        listening.set()  # EOF: the server exited

    threading.Thread(target=drain, daemon=True).start()
    # The server prints its address after listen(), so once it is read, connections queue.
    if not listening.wait(timeout) or not running.url:
        running.stop()
        raise RootfsFailed(f"{workload} did not listen (exit {proc.poll()}):\n{running.tail()}")
    return running
