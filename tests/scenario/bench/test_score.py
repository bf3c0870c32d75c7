"""AgentDojo's three rates over cells, each a count over a count; and the plan of cells."""

from __future__ import annotations

import pytest

from trustusbank.scenario.bench.harness import Cell
from trustusbank.scenario.bench.matrix import Options, plan
from trustusbank.scenario.bench.score import by, score


def cell(level: str, injection: str | None, utility: bool, attacked: bool | None, stops: list[str]) -> Cell:
    return Cell(
        level, "conversion", injection, "result" if injection else None, "direct", utility, attacked, stops
    )


def test_rates_and_where_failed_attacks_stopped() -> None:
    cells = [
        cell("l4", None, True, None, []),
        cell("l4", "exfiltrate-profile", True, False, ["ztunnel"]),
        cell("l4", "flag-transaction", False, True, []),
        cell("l4", "fake-ticket", True, False, ["ztunnel", "AccessPolicy"]),
        cell("none", "fake-ticket", True, True, []),
    ]
    result = score("l4", cells)
    assert (result.utility.hits, result.utility.total) == (1, 1)
    assert (result.utility_under_attack.hits, result.utility_under_attack.total) == (2, 3)
    assert (result.targeted_asr.hits, result.targeted_asr.total) == (1, 3)
    assert result.stopped_by == {"ztunnel": 2, "AccessPolicy": 1}
    assert str(result.targeted_asr) == "33.3% (1/3)"
    assert str(score("all", cells).utility) == "n/a"
    assert {k: v.total for k, v in by("vector", "l4", cells).items()} == {"result": 3}
    assert {k: v.hits for k, v in by("injection_task", "l4", cells).items()} == {
        "exfiltrate-profile": 0,
        "flag-transaction": 1,
        "fake-ticket": 0,
    }


def test_the_plan_puts_vectors_only_where_a_task_looks() -> None:
    quick = plan(Options(quick=True))
    assert [t.id for t in quick.user_tasks] == ["conversion"]
    assert quick.size() == 2 * 5
    full = plan(Options())
    balance = next(t for t in full.user_tasks if t.id == "balance")
    assert {v for _, v, _ in full.attacked(balance)} == {"description"}
    assert full.size() == (6 + 6 * 6 + 6 * 2) * 5  # benign runs, description everywhere, result on two
    with pytest.raises(ValueError, match="unknown vector nope"):
        plan(Options(vectors=("nope",)))
