"""Which digest a workload was running when something happened.

An image tag is not evidence: the rug pull keeps `acme-fx/currency-converter:1.0.0`
and changes the bytes. What ran is the digest the tag pointed to when the pod last
started. The evidence chain itself records pushes (`image-seeded` at `up`,
`image-pushed` later, each with the new digest) and pod starts (`started`), so the
digest is replayed from it, as of each record's time. For an image with no push on
record, the image store's current digest stands in (if that store exists); before
the first push on record, that push's `old_digest`; otherwise the digest stays
unknown rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from trustusbank.evidence.record import NewRecord

log = logging.getLogger(__name__)

PUSH_KINDS = ("image-seeded", "image-pushed")
START_KINDS = ("started",)

Lookup = Callable[[str], str | None]


def image_store_lookup(images: Path) -> Lookup:
    """What each tag points at in the image store now, if there is a store (read-only; never created).

    The store is optional here: without it, or when it cannot answer, digests come
    from the evidence chain alone, or stay unknown.
    """
    try:
        from trustusbank.images.store import ImageStore
    except ImportError:
        return lambda image: None
    try:
        store = ImageStore(images, readonly=True)
    except Exception:  # no store in this state directory
        return lambda image: None

    def lookup(image: str) -> str | None:
        try:
            found = store.lookup(image)
        except Exception as exc:  # evidence must not fail for want of a digest; it says "unknown"
            log.warning("image store lookup for %s failed: %s", image, exc)
            return None
        return found.digest if found is not None else None

    return lookup


def _previous(record: NewRecord) -> str | None:
    """What a push replaced, if its event says so (the digest before the first push on record)."""
    try:
        body = record.original()
    except ValueError:
        return None
    for key in ("previous_digest", "old_digest", "from_digest", "replaced_digest"):
        if isinstance(body, dict) and isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return None


class DigestTracker:
    """Digests as of a moment, from the pushes and pod starts on record (store and batch alike)."""

    def __init__(self, history: Iterable[NewRecord], current: Lookup) -> None:
        self.current = current
        self.pushes: dict[str, list[NewRecord]] = {}
        self.starts: dict[tuple[str, str], list[NewRecord]] = {}
        for record in sorted(history, key=lambda r: r.time):
            if record.kind in PUSH_KINDS and record.image and record.digest:
                self.pushes.setdefault(record.image, []).append(record)
            elif record.kind in START_KINDS and record.workload and record.namespace:
                self.starts.setdefault((record.namespace, record.workload), []).append(record)

    def image_at(self, image: str, time: str) -> str | None:
        pushes = self.pushes.get(image)
        if not pushes:
            return self.current(image)  # never pushed over: what the store holds now is what it held
        before = [p for p in pushes if p.time <= time]
        return before[-1].digest if before else _previous(pushes[0])

    def workload_at(self, namespace: str, workload: str, image: str, time: str) -> str | None:
        starts = [s for s in self.starts.get((namespace, workload), []) if s.time <= time]
        if starts:
            return starts[-1].digest or self.image_at(image, starts[-1].time)
        return self.image_at(image, time)

    def fill(self, record: NewRecord) -> NewRecord:
        if record.digest or not record.image:
            return record
        if record.workload and record.namespace:
            digest = self.workload_at(record.namespace, record.workload, record.image, record.time)
        else:
            digest = self.image_at(record.image, record.time)
        return replace(record, digest=digest) if digest else record
