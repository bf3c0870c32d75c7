"""A small disk for a test: a size-limited tmpfs, so a write meets a real ENOSPC.

Mounting takes root. As root (CI), the tmpfs is mounted where the test asks and unmounted
after. Otherwise (or if that mount is refused) the test is run again, alone, in a pytest of
its own inside a user and mount namespace (`unshare -Urm`), where it is root and its mount is
seen by no one else: the outer test fails if that run failed, and is reported skipped,
saying it passed there, if it passed. (Reaching a namespace's mount from outside
through `/proc/<pid>/root` is no substitute: SQLite resolves that link to `/` and would
write beside the tmpfs, not on it.) Neither possible: the test is skipped, saying why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

INSIDE = "TRUSTUSBANK_TEST_IN_USERNS"  # set in the namespaced run: never re-run again from there


def _rerun_in_namespace(nodeid: str, why: str) -> NoReturn:
    """Run test `nodeid` as root of a new user and mount namespace; fail or skip as it did."""
    if os.environ.get(INSIDE) or shutil.which("unshare") is None:
        pytest.skip(f"cannot mount a small tmpfs here ({why}), nor in a user namespace (unshare -Urm)")
    command = ["unshare", "-Urm", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", nodeid]
    env = {**os.environ, INSIDE: "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"in a user namespace (unshare -Urm):\n{done.stdout}\n{done.stderr}", pytrace=False)
    summary = done.stdout.splitlines()[-1]
    if " skipped" in summary:
        pytest.skip(f"skipped in a user namespace ({why} here): {summary}")
    pytest.skip(f"passed when run in a user namespace (unshare -Urm), as {why} here")


@contextlib.contextmanager
def small_disk(request: pytest.FixtureRequest, mountpoint: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (tmpfs's own syntax: 512k, 2m) at `mountpoint`, for the test `request` runs."""
    why = "not root"
    if os.geteuid() == 0:
        mountpoint.mkdir(parents=True, exist_ok=True)
        mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)]
        mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
        if mounted.returncode == 0:
            try:
                yield mountpoint
            finally:
                subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)
            return
        why = f"mount: {mounted.stderr.strip()}"
    _rerun_in_namespace(request.node.nodeid, why)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file (returned: unlink it to free the space)."""
    filler = disk / "filler"
    block = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler
