"""Reading the cluster: `kubectl` for the story's questions (which digest runs, what the proxies logged).

The install is a plan of commands shown as they run (`runner`); the story asks small questions
whose answers it parses, so these calls capture output and fail with kubectl's own words.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustusbank.errors import OperationError
from trustusbank.k8s import tools

TIMEOUT = 120  # seconds for one kubectl call: logs of a busy DaemonSet can take a while


class KubectlError(OperationError, RuntimeError):
    """kubectl exited non-zero (or could not run); the message carries its stderr."""


@dataclass(frozen=True)
class Kubectl:
    context: str | None = None
    env: Mapping[str, str] | None = None

    def argv(self, *args: str) -> list[str]:
        return ["kubectl", *(("--context", self.context) if self.context else ()), *args]

    def run(self, *args: str, stdin: str | None = None) -> str:
        tools.require(["kubectl"])
        argv = self.argv(*args)
        shown = " ".join(argv)
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env=None if self.env is None else dict(self.env),
            )
        except subprocess.TimeoutExpired as exc:
            raise KubectlError(f"`{shown}` did not finish within {TIMEOUT} s") from exc
        except OSError as exc:
            raise KubectlError(f"`{shown}` could not run: {exc}") from exc
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise KubectlError(f"`{shown}` exited {done.returncode}: " + " / ".join(said))
        return done.stdout

    def json(self, *args: str) -> Any:
        text = self.run(*args, "--output=json")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise KubectlError(f"`kubectl {' '.join(args)}` did not print JSON: {exc}") from exc

    def items(self, kind: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        where = ["--namespace", namespace] if namespace else ["--all-namespaces"]
        chosen = ["--selector", selector] if selector else []
        found = self.json("get", kind, *where, *chosen)
        items = found.get("items") if isinstance(found, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def logs(self, namespace: str, selector: str, since: str | None) -> list[tuple[str, str]]:
        """(pod, line) for each line the selected pods logged since `since` (RFC 3339)."""
        window = [f"--since-time={since}"] if since else []
        text = self.run(
            "logs", "--namespace", namespace, "--selector", selector, "--prefix", "--tail=-1",
            "--max-log-requests=20", "--ignore-errors", *window,
        )  # fmt: skip
        return list(prefixed_lines(text.splitlines()))


def prefixed_lines(lines: Sequence[str]) -> list[tuple[str, str]]:
    """`[pod/<name>/<container>] line` (kubectl logs --prefix) as (name, line)."""
    out = []
    for line in lines:
        if line.startswith("[pod/") and "] " in line:
            prefix, _, rest = line.partition("] ")
            out.append((prefix.removeprefix("[pod/").split("/", 1)[0], rest))
    return out
