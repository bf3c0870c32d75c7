"""A hash of the tool list a build advertises (`workloads/agentregistry/inspect.py` lists it).

The hash is over canonical JSON of what `tools/list` returns, so it changes when
a tool's name, description or schemas change, and for nothing else.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_tools(tools: list[Any]) -> list[dict[str, Any]]:
    dumped = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    return sorted(dumped, key=lambda t: t["name"])


def tool_list_hash(tools: list[Any]) -> str:
    blob = json.dumps(canonical_tools(tools), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"sha256:{hashlib.sha256(blob.encode()).hexdigest()}"
