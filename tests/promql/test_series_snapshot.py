"""A store's snapshot: what a query in another thread reads while the evaluator keeps writing."""

from __future__ import annotations

from trustusbank.promql.ast import MatrixSelector
from trustusbank.promql.engine import Engine
from trustusbank.promql.parser import parse
from trustusbank.promql.series import SeriesStore, labels_of


def test_a_snapshot_does_not_change_with_its_store() -> None:
    store = SeriesStore()
    old, new = labels_of({"__name__": "c", "n": "old"}), labels_of({"__name__": "c", "n": "new"})
    store.append(old, 1.0, 1.0)
    store.append(old, 2.0, 2.0)
    copy = store.snapshot()
    store.append(old, 3.0, 3.0)
    store.append(new, 3.0, 1.0)
    store.mark_stale(old, 4.0)
    store.prune(2.5)
    selector = parse("c[10s]")
    assert isinstance(selector, MatrixSelector)
    seen = Engine(copy).matrix(selector, 4.0)
    assert seen == [(old, [(1.0, 1.0), (2.0, 2.0)])]
    assert not next(copy.series("c")).pruned
    assert len(store) == 2
    assert [len(s.times) for s in store.series("c")] == [2, 1]  # the store moved on: pruned, stale, new
