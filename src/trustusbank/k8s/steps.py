"""A Kubernetes-mode plan as data: steps of commands, each with how to tell it is done already.

The installer, `--dry-run` and the recorded-call tests all read the same plan, so what is
printed is what runs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stdin: str | None = None  # a rendered file piped in (`kubectl apply -f -`)

    def shown(self) -> str:
        return shlex.join(self.argv) + (" <<EOF … EOF" if self.stdin is not None else "")


@dataclass(frozen=True)
class Check:
    """Done already when `argv` succeeds and (if given) `word` is one of the words it prints."""

    argv: tuple[str, ...]
    word: str | None = None

    def passed(self, returncode: int, stdout: str) -> bool:
        return returncode == 0 and (self.word is None or self.word in stdout.split())

    def shown(self) -> str:
        return shlex.join(self.argv) + (f" prints {self.word!r}" if self.word else " succeeds")


@dataclass(frozen=True)
class Step:
    phase: str  # "01".."09", the write-up's phases
    title: str
    commands: tuple[Command, ...]
    done_if: Check | None = None  # skip when it passes: what makes a re-run change nothing
    diagnose: tuple[Command, ...] = ()  # run on failure: the failing resource's events and logs

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.argv[0] for c in self.commands))


def cmd(*argv: str, stdin: str | None = None) -> Command:
    return Command(tuple(argv), stdin)
