"""Runs a plan: checks the tools first, writes the rendered files, then each step in order.

A step whose check passes is skipped and said so; each command's output is shown as it comes
(a Helm `--wait` can take minutes); the first command that fails stops the run with its own
output and the failing resources' events and logs (the step's `diagnose` commands), which is
what a person would run next. `--dry-run` prints the same plan and runs nothing.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trustusbank.errors import OperationError
from trustusbank.k8s import tools
from trustusbank.k8s.plan import Plan
from trustusbank.k8s.steps import Command, Step

Say = Callable[[str], None]
TAIL = 40


class StepFailed(OperationError, RuntimeError):
    """A step's command failed; the message carries its output and the diagnostics."""


@dataclass(frozen=True)
class Outcome:
    step: Step
    status: str  # "done" | "skipped"
    seconds: float


def _needs(plan: Plan) -> list[str]:
    return list(dict.fromkeys(name for step in plan.steps for name in step.needs))


def describe(plan: Plan, say: Say) -> None:
    """The plan as `--dry-run` prints it: every step, command, check and file, nothing run."""
    gone = tools.missing(_needs(plan))
    say(f"tools: {', '.join(_needs(plan))}" + (f" (missing here: {', '.join(gone)})" if gone else ""))
    for path in plan.files:
        say(f"writes {path}")
    for item in plan.left_out:
        say(f"not applied: {item}")
    for item in plan.added:
        say(f"also applied: {item}")
    for number, step in enumerate(plan.steps, 1):
        say(f"[{number}/{len(plan.steps)}] phase {step.phase}: {step.title}")
        if step.done_if is not None:
            say(f"    skipped when: {step.done_if.shown()}")
        for command in step.commands:
            say(f"    $ {command.shown()}")
        for command in step.diagnose:
            say(f"    on failure: {command.shown()}")


def _write(plan: Plan) -> None:
    for path, text in plan.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if "licence" in path.name:
            path.chmod(0o600)


def _stream(command: Command, env: Mapping[str, str], say: Say) -> tuple[int, list[str]]:
    """Run one command, showing its output as it comes; its exit code and last lines."""
    tail: deque[str] = deque(maxlen=TAIL)
    with subprocess.Popen(
        command.argv,
        stdin=subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
    ) as proc:
        if command.stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(command.stdin)
            proc.stdin.close()
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            say(f"      {line.rstrip()}")
    return proc.returncode, list(tail)


def _quiet(argv: tuple[str, ...], env: Mapping[str, str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=dict(env), timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, f"{type(exc).__name__}: {exc}"
    return done.returncode, done.stdout + done.stderr


def _diagnostics(step: Step, env: Mapping[str, str]) -> str:
    parts = []
    for command in step.diagnose:
        code, output = _quiet(command.argv, env)
        lines = output.strip().splitlines()[-TAIL:]
        parts.append(f"$ {command.shown()}  (exit {code})\n" + "\n".join(lines))
    return "\n".join(parts)


def run(plan: Plan, say: Say, env: Mapping[str, str] | None = None) -> list[Outcome]:
    environ = dict(os.environ if env is None else env)
    tools.require(_needs(plan))
    _write(plan)
    outcomes = []
    for number, step in enumerate(plan.steps, 1):
        header = f"[{number}/{len(plan.steps)}] phase {step.phase}: {step.title}"
        started = time.monotonic()
        if step.done_if is not None:
            code, output = _quiet(step.done_if.argv, environ)
            if step.done_if.passed(code, output):
                say(f"{header} — already done")
                outcomes.append(Outcome(step, "skipped", time.monotonic() - started))
                continue
        say(header)
        for command in step.commands:
            say(f"    $ {command.shown()}")
            code, tail = _stream(command, environ, say)
            if code != 0:
                raise StepFailed(
                    f"{header} failed: `{command.shown()}` exited {code}\n"
                    + "\n".join(tail[-TAIL:])
                    + (
                        f"\n--- what the cluster says ---\n{_diagnostics(step, environ)}"
                        if step.diagnose
                        else ""
                    )
                )
        outcomes.append(Outcome(step, "done", time.monotonic() - started))
    return outcomes
