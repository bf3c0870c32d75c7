"""Structured logs as the evidence trail wants them: one JSON object per line.

Each record also goes to stderr as `key=value` pairs, the shape ztunnel and
agentgateway print, so reading a component's log by eye works too.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any


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
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        pairs = " ".join(_pair(k, v) for k, v in fields.items() if v is not None)
        print(f"{stamp}\t{level}\t{scope}\t{message} {pairs}", file=sys.stderr, flush=True)
