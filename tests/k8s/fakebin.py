"""Fake `kind`, `docker`, `helm` and `kubectl` executables that record every call and keep a little state.

Each is a small Python script on PATH. It appends `{"tool", "argv", "stdin"}` to a JSON-lines
log and answers the few questions the installer asks (`kind get clusters`, `docker inspect`,
`docker network inspect`) from a state file that its own earlier calls changed, so a second
`k8s up` sees the cluster and registry the first one made. `FAKE_FAIL` makes a call fail:
`helm:istiod` fails the first helm call whose argv contains "istiod".
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = r"""#!{python}
import json, os, sys
from pathlib import Path

tool = Path(sys.argv[0]).name
argv = sys.argv[1:]
log, state_file = Path(os.environ["FAKE_LOG"]), Path(os.environ["FAKE_STATE"])
state = json.loads(state_file.read_text()) if state_file.exists() else {{}}
stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with log.open("a") as f:
    f.write(json.dumps({{"tool": tool, "argv": argv, "stdin": stdin or None}}) + "\n")

def save():
    state_file.write_text(json.dumps(state))

for rule in filter(None, os.environ.get("FAKE_FAIL", "").split(";")):
    who, _, words = rule.partition(":")
    if who == tool and all(w in argv for w in words.split(":")):
        print(f"{{tool}}: simulated failure ({{rule}})", file=sys.stderr)
        sys.exit(1)

clusters = state.setdefault("clusters", [])
containers = state.setdefault("containers", [])
network = state.setdefault("kind-network", [])
if tool == "kind" and argv[:2] == ["get", "clusters"]:
    print("\n".join(clusters) if clusters else "No kind clusters found.")
elif tool == "kind" and argv[:2] == ["create", "cluster"]:
    clusters.append(argv[argv.index("--name") + 1]); save()
elif tool == "kind" and argv[:2] == ["delete", "cluster"]:
    state["clusters"] = [c for c in clusters if c != argv[argv.index("--name") + 1]]; save()
elif tool == "docker" and argv[:1] == ["inspect"]:
    if argv[-1] not in containers:
        print(f"Error: No such object: {{argv[-1]}}", file=sys.stderr); sys.exit(1)
    print("true")
elif tool == "docker" and argv[:1] == ["run"]:
    containers.append(argv[argv.index("--name") + 1]); save()
elif tool == "docker" and argv[:2] == ["network", "inspect"]:
    print(" ".join(network))
elif tool == "docker" and argv[:2] == ["network", "connect"]:
    network.append(argv[-1]); save()
elif tool == "docker" and argv[:1] == ["rm"]:
    state["containers"] = [c for c in containers if c != argv[-1]]; save()
elif tool == "docker" and argv[:1] == ["build"] and any("currency-converter" in a for a in argv):
    chosen = [a.split("=", 1)[1] for a in argv if a.startswith("CONVERTER_BUILD=")]
    state["built_converter"] = chosen[0]; save()
    print("docker ok")
elif tool == "docker" and argv[:1] == ["push"] and "currency-converter" in argv[-1]:
    state["registry_converter"] = state.get("built_converter", "clean"); save()
    print("docker ok")
elif tool == "kubectl" and "rollout" in argv and "restart" in argv:
    state.setdefault("restarts", []).append(argv[argv.index("restart") + 1])
    if "deployment/currency-converter" in argv:
        state["running_converter"] = state.get("registry_converter", "clean")
    save(); print("restarted")
elif tool == "kubectl" and "get" in argv and argv[argv.index("get") + 1] == "pods":
    namespace = argv[argv.index("--namespace") + 1] if "--namespace" in argv else None
    items = state.get("pods", {{}}).get(namespace, [])
    if namespace == "trustusbank-bank-vendors":
        import hashlib
        build = state.get("running_converter", "clean")
        digest = "sha256:" + hashlib.sha256(build.encode()).hexdigest()
        started = "2026-12-03T10:%02d:00Z" % len(state.get("restarts", []))
        image = "localhost:5001/acme-fx/currency-converter:1.0.0"
        items = [{{
            "metadata": {{"name": "currency-converter-7d9f-abcde", "namespace": namespace,
                          "labels": {{"app": "currency-converter"}}}},
            "spec": {{"serviceAccountName": "currency-converter", "containers": [{{"image": image}}]}},
            "status": {{"podIP": "10.244.1.7", "containerStatuses": [{{
                "name": "app", "image": image, "imageID": image.rsplit(":", 1)[0] + "@" + digest,
                "state": {{"running": {{"startedAt": started}}}}}}]}},
        }}]
    print(json.dumps({{"items": items}}))
elif tool == "kubectl" and "logs" in argv and "--selector" in argv and "logs" in state:
    print("\n".join(state["logs"].get(argv[argv.index("--selector") + 1], [])))
elif tool == "kubectl" and any("08-defence" in a for a in argv):
    state["defence"] = "apply" in argv; save()
    print("policies " + ("applied" if state["defence"] else "deleted"))
elif tool == "helm" and "status" in argv:
    print("STATUS: failed")
elif tool == "kubectl" and "events" in argv:
    print("Warning  BackOff  pod/x  Back-off restarting failed container")
elif tool == "kubectl" and "logs" in argv:
    print("Traceback: the pod's own last words")
else:
    print(f"{{tool}} ok")
"""


TOOLS = ("kind", "docker", "helm", "kubectl")


@dataclass
class FakeBin:
    folder: Path
    log: Path
    state: Path

    def env(
        self, tools: tuple[str, ...] = ("kind", "docker", "helm", "kubectl"), **extra: str
    ) -> dict[str, str]:
        """An environment whose PATH has only the fakes named in `tools` (a real kubectl is never found)."""
        chosen = self.folder / ("path-" + "-".join(sorted(tools)))
        chosen.mkdir(exist_ok=True)
        for name in tools:
            link = chosen / name
            if not link.exists():
                link.symlink_to(self.folder / name)
        fakes = {"PATH": str(chosen), "FAKE_LOG": str(self.log), "FAKE_STATE": str(self.state)}
        return {**os.environ, **fakes, **extra}

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def forget_calls(self) -> None:
        self.log.unlink(missing_ok=True)


def make(folder: Path) -> FakeBin:
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOOLS:
        script = folder / name
        script.write_text(SCRIPT.format(python=sys.executable))
        script.chmod(0o755)
    return FakeBin(folder, folder / "calls.jsonl", folder / "state.json")
