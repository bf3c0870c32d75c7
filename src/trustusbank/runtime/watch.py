"""Notice when manifests on disk change, cheaply: by path, mtime and size."""

from __future__ import annotations

from pathlib import Path

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(paths: list[Path]) -> Fingerprint:
    files = sorted(
        f for p in paths if p.exists() for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()
    )
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
