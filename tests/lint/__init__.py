"""Tests of `trustusbank policy lint`: one fixture per mistake, each finding asserted exactly."""

from __future__ import annotations

from pathlib import Path

from tests.paths import DEPLOY as DEPLOY
from trustusbank.lint import Finding, Severity, lint_path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Path:
    return FIXTURES / name


def line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `text` (so fixtures can be edited)."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if text in line]
    assert len(hits) >= occurrence, f"{text!r} occurs {len(hits)} times in {path.name}"
    return hits[occurrence - 1]


def lint(path: Path) -> list[Finding]:
    return lint_path(path)


def shape(findings: list[Finding]) -> list[tuple[int, Severity, str, str, int | None]]:
    """What to compare: (line, severity, code, policy, rule)."""
    return [(f.line, f.severity, f.code, f.policy, f.rule) for f in findings]


def by_code(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


# The one kind of warning deploy/ has on purpose: the console's UserGroup subjects (admins may call
# support-bot and fraud-bot), which kagent OSS cannot enforce (a group is a claim of the person's
# token, which ztunnel never sees); `tests/lint/test_lint_kagent_oss.py` asserts them exactly.
USER_GROUP = "oss-access-user-group"


def unexpected(findings: list[Finding]) -> list[Finding]:
    """Errors and warnings, but for the deploy bundle's known UserGroup warnings."""
    return [f for f in findings if f.severity in (Severity.ERROR, Severity.WARNING) and f.code != USER_GROUP]
