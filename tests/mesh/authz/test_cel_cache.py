"""The bounded LRU that holds remembered decisions and per-caller activations."""

from __future__ import annotations

import pytest

from trustusbank.mesh.authz.cel_cache import CacheStats, Lru


def test_it_never_holds_more_than_its_capacity_and_counts_evictions() -> None:
    lru: Lru[str] = Lru(3)
    for i in range(10):
        lru.put(i, f"v{i}")

    assert len(lru) == 3
    assert [lru.get(i) for i in (7, 8, 9)] == ["v7", "v8", "v9"]
    assert lru.get(6) is None
    assert lru.stats() == CacheStats(size=3, capacity=3, hits=3, misses=1, evictions=7)


def test_the_least_recently_used_entry_goes_first() -> None:
    lru: Lru[str] = Lru(2)
    lru.put("a", "A")
    lru.put("b", "B")
    assert lru.get("a") == "A"  # "b" is now the least recently used

    lru.put("c", "C")

    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c")) == ("A", "C")


def test_putting_a_key_again_replaces_its_value_without_evicting() -> None:
    lru: Lru[str] = Lru(2)
    lru.put("a", "A")
    lru.put("b", "B")
    lru.put("a", "A2")

    assert (lru.get("a"), lru.get("b"), lru.stats().evictions) == ("A2", "B", 0)


def test_an_empty_cache_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        Lru(0)
