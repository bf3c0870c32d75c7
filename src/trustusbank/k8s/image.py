"""The one image every workload runs: which tags `deploy/` names, and how to build and push them.

Every Deployment in `deploy/` runs `trustusbank serve <workload>` from an image under the local
registry; they all get the same image (the `Containerfile`), under the tags the manifests name.
The currency-converter's tag is the exception that makes the story: its image is built with
`CONVERTER_BUILD=<build>`, and the rug pull is a rebuild with a malicious build pushed under the
*same* tag, so no manifest changes (the write-up's `upgrade-banking-app.sh`).

Everything here is data: argv lists for docker or podman, so the installer can run them and its
tests can assert them. `run` executes a list of them, streaming each command's output.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trustusbank.errors import ConfigError, OperationError, UnavailableError
from trustusbank.images.builds import BUILDS
from trustusbank.images.converter_builds import DEFAULT_RUG_PULL
from trustusbank.k8s.versions import PYTHON_IMAGE
from trustusbank.manifests.bundle import load_bundle

CONTAINERFILE = "Containerfile"
ENGINES = ("docker", "podman")
CONVERTER = "currency-converter"
BUILD_ARG = "CONVERTER_BUILD"
"""The Containerfile's build argument choosing the converter build baked into the image."""
CONVERTER_BUILDS = tuple(BUILDS[CONVERTER].variants)
CLEAN_BUILD = BUILDS[CONVERTER].default_variant
RUG_PULL_BUILD = DEFAULT_RUG_PULL

# How the wheels become the image's venv: the Containerfile's build stage runs these lines once the
# project's wheel and its dependencies' are in /wheels; the rootfs check runs the same ones.
SERVE = ("trustusbank", "serve")  # every Deployment's command starts so; so does the ENTRYPOINT
VENV = PurePosixPath("/opt/trustusbank")
WHEELS_DIR = PurePosixPath("/wheels")
VENV_STEPS = (
    f"python3 -m venv {VENV}",
    f"{VENV}/bin/pip install --no-cache-dir --no-index --find-links {WHEELS_DIR} trustusbank",
    f"{VENV}/bin/pip uninstall --yes pip setuptools",
)


class ImagePlanError(ConfigError, ValueError):
    """`deploy/` names images this plan cannot build (not `trustusbank serve`, a shared rug-pull tag)."""


class EngineMissing(UnavailableError, RuntimeError):
    """Neither docker nor podman is on PATH."""


class ImageCommandFailed(OperationError, RuntimeError):
    """A build or push command exited non-zero."""


def check_build(converter_build: str) -> str:
    """`converter_build` if the converter has such a build; an unknown one builds nothing."""
    if converter_build not in CONVERTER_BUILDS:
        raise ImagePlanError(
            f"{BUILD_ARG}={converter_build!r}: the converter's builds are {', '.join(CONVERTER_BUILDS)}"
        )
    return converter_build


@dataclass(frozen=True)
class ImageConfig:
    """What a Containerfile gives the image it builds: its environment, user, directory, entry point."""

    env: dict[str, str]
    user: str
    workdir: str
    entrypoint: tuple[str, ...]
    stages: tuple[str, ...]  # from the first FROM to the final stage, as the build resolves them
    runs: dict[str, tuple[str, ...]]  # stage -> its RUN commands, each split at `&&`


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _logical_lines(text: str) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        instruction, _, rest = whole.partition(" ")
        lines.append((instruction.upper(), rest.strip()))
    return lines


def _expand(value: str, args: Mapping[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in args:
            raise ImagePlanError(f"{CONTAINERFILE}: ${name} is not a declared ARG")
        return args[name]

    return _VAR.sub(sub, value)


def read_containerfile(path: Path, converter_build: str = CLEAN_BUILD) -> ImageConfig:
    """The final image's config as `docker build --build-arg CONVERTER_BUILD=...` resolves it.

    The rootfs check runs its workloads with this config, so what it proves is what the
    Containerfile says. Knows only what this project's Containerfile uses (global ARGs,
    FROM ... AS, ENV k=v, USER, WORKDIR, exec-form ENTRYPOINT, RUN); anything it cannot
    resolve is an error, not a guess.
    """
    args: dict[str, str] = {}
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    order: list[str] = []
    for instruction, rest in _logical_lines(path.read_text()):
        if instruction == "ARG" and not order:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"#{len(order)}"
            order.append(name)
            stages[name] = (parts[0], [])
        elif order:
            stages[order[-1]][1].append((instruction, rest))
        else:
            raise ImagePlanError(f"{CONTAINERFILE}: {instruction} before the first FROM")
    if not order:
        raise ImagePlanError(f"{CONTAINERFILE}: no FROM")
    args[BUILD_ARG] = check_build(converter_build)
    chain: list[str] = []
    stage: str | None = order[-1]
    while stage is not None:
        chain.insert(0, stage)
        base = _expand(stages[stage][0], args)
        stage = base if base in stages else None
        if stage is None and base.startswith("converter-"):
            raise ImagePlanError(f"{CONTAINERFILE}: no stage {base} ({BUILD_ARG}={converter_build})")
    env: dict[str, str] = {}
    user, workdir, entrypoint = "root", "/", ()
    for name in chain:
        for instruction, rest in stages[name][1]:
            if instruction == "ENV":
                for item in rest.split():
                    key, eq, value = item.partition("=")
                    if not eq or "$" in value:
                        raise ImagePlanError(f"{CONTAINERFILE}: ENV {item!r} is not a plain key=value")
                    env[key] = value
            elif instruction == "USER":
                user = rest
            elif instruction == "WORKDIR":
                workdir = rest
            elif instruction == "ENTRYPOINT":
                entrypoint = tuple(json.loads(rest))
    runs = {
        name: tuple(step.strip() for i, rest in stages[name][1] if i == "RUN" for step in rest.split("&&"))
        for name in order
    }
    return ImageConfig(env, user, workdir, entrypoint, tuple(chain), runs)


@dataclass(frozen=True)
class ImageTag:
    """One image reference a Deployment names, and the workload it runs from it."""

    ref: str
    workload: str
    deployments: tuple[str, ...]  # namespace/name


def image_tags(deploy: Path) -> list[ImageTag]:
    """Every image `deploy/`'s Deployments name, with the workload each runs, sorted by reference."""
    found: dict[str, tuple[str, list[str]]] = {}
    for deployment in load_bundle(deploy).deployments():
        where = f"{deployment.namespace}/{deployment.name}"
        for container in deployment.containers:
            if not container.image:
                raise ImagePlanError(f"{where}: container {container.name} names no image")
            argv = [*container.command, *container.args]
            if argv[: len(SERVE)] != list(SERVE) or len(argv) <= len(SERVE):
                raise ImagePlanError(
                    f"{where}: container {container.name} runs {argv[:3]}, not `trustusbank serve <workload>`"
                )
            workload = argv[len(SERVE)]
            if workload not in BUILDS:
                raise ImagePlanError(f"{where}: no workload {workload!r} in the image")
            known, users = found.setdefault(container.image, (workload, []))
            if known != workload and CONVERTER in (known, workload):
                # A rug pull of this tag would swap another workload's bytes too.
                raise ImagePlanError(f"image {container.image} runs both {known} and {workload}")
            users.append(where)
    return [ImageTag(ref, w, tuple(users)) for ref, (w, users) in sorted(found.items())]


def find_engine(path: str | None = None) -> str:
    """docker, else podman, as found on PATH (`path` overrides it)."""
    for engine in ENGINES:
        found = shutil.which(engine, path=path)
        if found:
            return engine
    raise EngineMissing(
        "neither docker nor podman is on PATH: install one (Debian: `apt-get install docker.io` or "
        "`apt-get install podman`; https://docs.docker.com/engine/install/ or https://podman.io/docs/installation)"
    )


def _registry_host(ref: str) -> str:
    first = ref.split("/", 1)[0]
    return first if "/" in ref and ("." in first or ":" in first or first == "localhost") else ""


@dataclass(frozen=True)
class ImagePlan:
    """The tags to build and push, with which engine, from which checkout."""

    engine: str
    context: Path
    tags: tuple[ImageTag, ...]
    python_image: str = PYTHON_IMAGE

    @classmethod
    def from_deploy(cls, deploy: Path, context: Path, engine: str | None = None) -> ImagePlan:
        if not (context / CONTAINERFILE).is_file():
            raise ImagePlanError(f"no {CONTAINERFILE} in {context}: build from a trustusbank checkout")
        return cls(engine or find_engine(), context, tuple(image_tags(deploy)))

    @property
    def converter_refs(self) -> list[str]:
        return [t.ref for t in self.tags if t.workload == CONVERTER]

    @property
    def shared_refs(self) -> list[str]:
        return [t.ref for t in self.tags if t.workload != CONVERTER]

    def build_argv(self, refs: Sequence[str], converter_build: str = CLEAN_BUILD) -> list[str]:
        check_build(converter_build)
        argv = [self.engine, "build", "--file", str(self.context / CONTAINERFILE)]
        argv += ["--build-arg", f"PYTHON_IMAGE={self.python_image}"]
        argv += ["--build-arg", f"{BUILD_ARG}={converter_build}"]
        for ref in refs:
            argv += ["--tag", ref]
        return [*argv, str(self.context)]

    def push_argv(self, ref: str) -> list[str]:
        argv = [self.engine, "push"]
        if self.engine == "podman" and _registry_host(ref).split(":")[0] in ("localhost", "127.0.0.1"):
            argv.append(
                "--tls-verify=false"
            )  # the kind registry speaks plain HTTP; docker allows it for localhost
        return [*argv, ref]

    def build_commands(self, converter_build: str = CLEAN_BUILD) -> list[list[str]]:
        """Build every tag (the converter's with `converter_build`), then push each."""
        if converter_build == CLEAN_BUILD:
            builds = [self.build_argv([t.ref for t in self.tags])]
        else:
            builds = [
                self.build_argv(self.shared_refs),
                self.build_argv(self.converter_refs, converter_build),
            ]
        return [*(b for b in builds if "--tag" in b), *(self.push_argv(t.ref) for t in self.tags)]

    def rug_pull_commands(self, converter_build: str = RUG_PULL_BUILD) -> list[list[str]]:
        """Rebuild the converter with a malicious build and push it under the same tag."""
        if converter_build == CLEAN_BUILD:
            raise ImagePlanError(f"{CLEAN_BUILD} is the vendor's honest build, not a rug pull")
        return self.converter_commands(converter_build)

    def converter_commands(self, converter_build: str) -> list[list[str]]:
        """Rebuild the converter with `converter_build` (the clean one puts the vendor's bytes back)."""
        refs = self.converter_refs
        if not refs:
            raise ImagePlanError(f"no Deployment in the manifests runs {CONVERTER}")
        return [self.build_argv(refs, converter_build), *(self.push_argv(ref) for ref in refs)]


def run(commands: Sequence[Sequence[str]], env: Mapping[str, str] | None = None) -> None:
    """Run each command in turn, its output streaming to ours; stop at the first that fails."""
    for argv in commands:
        try:
            code = subprocess.run(list(argv), env=None if env is None else dict(env), check=False).returncode
        except FileNotFoundError as exc:
            raise EngineMissing(f"`{argv[0]}` is not on PATH: {exc}") from exc
        if code != 0:
            raise ImageCommandFailed(f"`{' '.join(argv)}` exited with {code}")
