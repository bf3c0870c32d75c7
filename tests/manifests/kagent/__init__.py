"""Tests of the kagent kinds, their bundle checks, the controller and the kagent lint.

Bundles are written to a temporary folder as YAML and read back through the real loader, so
every problem is asserted with the line the loader reports; lines are found by text
(`line_of`), so the YAML can be edited without renumbering the tests.
"""

from __future__ import annotations

from pathlib import Path

from tests.paths import DEPLOY as DEPLOY

AGENTS_DIR = DEPLOY / "07-agents"
FIXTURES = Path(__file__).parent / "fixtures"
NS = "trustusbank-bank-agents"

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: bank
"""

MODEL = """\
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata:
  name: scripted
  namespace: bank
spec:
  provider: OpenAI
  model: trustusbank-scripted
  openAI:
    baseUrl: http://model.bank.svc.cluster.local:8080/v1
"""

SERVER = """\
apiVersion: kagent.dev/v1alpha2
kind: RemoteMCPServer
metadata:
  name: tools
  namespace: bank
spec:
  description: Tools.
  url: http://gw.bank.svc.cluster.local:8080/mcp/tools
"""


def agent(name: str, tools: str = "", model: str = "scripted", labels: str = "") -> str:
    """An Agent in namespace bank; `tools` is the YAML list under spec.declarative.tools."""
    tool_block = (
        "    tools:\n" + "".join(f"      {line}\n" for line in tools.strip("\n").splitlines())
        if tools
        else ""
    )
    label_block = f"  labels:\n    {labels}\n" if labels else ""
    return (
        f"apiVersion: kagent.dev/v1alpha2\nkind: Agent\nmetadata:\n  name: {name}\n  namespace: bank\n"
        f"{label_block}spec:\n  type: Declarative\n  description: The {name} agent.\n  declarative:\n"
        f"    modelConfig: {model}\n    systemMessage: You are {name}.\n{tool_block}"
    )


def policy(name: str, target: str, subjects: str = "", action: str = "ALLOW") -> str:
    """An AccessPolicy in namespace bank; `subjects` is the YAML list under spec.from.subjects."""
    body = "".join(f"      {line}\n" for line in subjects.strip("\n").splitlines()) if subjects else ""
    subject_block = f"  from:\n    subjects:\n{body}" if subjects else "  from:\n    subjects: []\n"
    return (
        f"apiVersion: policy.kagent-enterprise.solo.io/v1alpha1\nkind: AccessPolicy\nmetadata:\n"
        f"  name: {name}\n  namespace: bank\nspec:\n  action: {action}\n  targetRef:\n    kind: Agent\n"
        f'    name: "{target}"\n{subject_block}'
    )


def documents(*texts: str) -> str:
    return "---\n".join(texts)


def write(root: Path, text: str, name: str = "bundle.yaml") -> Path:
    """`text` as one file of a bundle at `root` that also declares namespace bank."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "00-namespace.yaml").write_text(NAMESPACE)
    path = root / name
    path.write_text(text)
    return path


def line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `text`."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if text in line]
    assert len(hits) >= occurrence, f"{text!r} occurs {len(hits)} times in {path.name}"
    return hits[occurrence - 1]
