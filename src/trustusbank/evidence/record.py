"""One evidence record, and the hash that chains it to the one before.

A record keeps the original log line or span verbatim (`body`, canonical JSON)
next to the few fields an auditor queries by (who, what image, which policy,
which trace). The hash covers all of it, so changing any field, the body
included, breaks the chain from that record on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The kinds an auditor calls "denies": a connection or request the mesh or an agent refused.
DENY_SUFFIX = "-deny"


def canonical(value: Any) -> str:
    """The one JSON spelling of a value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def iso(moment: datetime) -> str:
    """UTC, microseconds, `Z`: every record's time is spelled this way, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> str | None:
    """A source's timestamp (ISO 8601 text or epoch seconds) as our ISO spelling; None if unreadable."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return iso(datetime.fromtimestamp(float(value), UTC))
        if isinstance(value, str) and value:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return iso(moment)
    except (ValueError, OverflowError, OSError):
        return None
    return None


@dataclass(frozen=True)
class NewRecord:
    """A record before it joins the chain (no seq, no hashes yet)."""

    time: str
    source: str
    kind: str
    summary: str
    origin: str  # "<file relative to the cluster directory>#<file generation>:<byte offset>"
    body: str  # canonical JSON of the original line or span
    src_identity: str | None = None
    dst_identity: str | None = None
    workload: str | None = None  # the acting workload: a deny's offender, a tool call's agent
    namespace: str | None = None
    image: str | None = None
    digest: str | None = None
    trace_id: str | None = None
    policy: str | None = None
    tool: str | None = None
    flags: str | None = None  # comma-separated markers, e.g. "pii-in-arguments"

    def original(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Record(NewRecord):
    seq: int = 0
    prev_hash: str = GENESIS
    hash: str = field(default="")

    @property
    def is_deny(self) -> bool:
        return self.kind.endswith(DENY_SUFFIX)

    def hashed_fields(self) -> dict[str, Any]:
        """Everything the hash covers: the whole record except the hash itself."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hash"}

    def compute_hash(self) -> str:
        return chain_hash(self.prev_hash, self.hashed_fields())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["body"] = self.original()
        return out


COLUMNS = tuple(f.name for f in fields(Record))


def chain_hash(prev_hash: str, hashed: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("utf-8") + canonical(hashed).encode("utf-8")).hexdigest()
