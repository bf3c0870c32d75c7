"""Structured logs as the evidence trail wants them: one JSON object per line.

Each record also goes to stderr as `key=value` pairs, the shape ztunnel and
agentgateway print, so reading a component's log by eye works too.

Every JSON-lines file of the cluster is appended to through `append_lines`, so a
line left unfinished (its writer killed mid-write, or cut short by a full disk)
never swallows the next one.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustusbank.errors import UnavailableError


class LineNotWritten(UnavailableError, OSError):
    """A log line the disk would not take (full, say): its writer hears of it; never dropped quietly."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(
            f"could not append to {path} ({cause.strerror or cause}): free space on {path.parent}; "
            "a line cut short is ended by the next write"
        )
        self.errno, self.filename = cause.errno, str(path)

    def __str__(self) -> str:
        return str(self.args[0])  # the sentence, not OSError's "[Errno N] ..."


def append_lines(path: Path, lines: Sequence[str]) -> None:
    """Append `lines`, each ended by a newline, in one write; first end a line a writer left unfinished.

    Appended straight after an unfinished line, the first new line would be fused into it and
    read as one garbled line. Ended first, the fragment stays a line of its own (the evidence
    keeps it, as unreadable) and every new line reads whole. A write the disk has no room for
    raises OSError (ENOSPC) and may leave its own fragment, which the next append ends.
    """
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if not data:
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise LineNotWritten(path, exc) from exc


def _stamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}Z"


def _pair(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{key}={json.dumps(text) if ' ' in text else text}"


class JsonLinesLog:
    def __init__(self, path: Path, **constant: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.constant = constant
        self._lock = threading.Lock()

    def write(self, level: str, scope: str, message: str, fields: dict[str, Any]) -> None:
        stamp = _stamp()
        entry = {"time": stamp, "level": level, "scope": scope, **self.constant, "message": message, **fields}
        with self._lock:
            append_lines(self.path, [json.dumps(entry)])
        pairs = " ".join(_pair(k, v) for k, v in fields.items() if v is not None)
        print(f"{stamp}\t{level}\t{scope}\t{message} {pairs}", file=sys.stderr, flush=True)
