"""Load the manifest bundle and check that its objects fit together.

Per-document validation cannot see that a Service selects nothing or that a
Deployment runs as an undeclared ServiceAccount; those are the mistakes that make
a bundle look fine and then fail at run time, so they are checked here, each as a
small function in `CHECKS` that later kinds extend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from trustusbank.images.builds import BUILDS
from trustusbank.manifests.core import ConfigMap, Deployment, Namespace, Service, ServiceAccount
from trustusbank.manifests.kagent import checks as kagent_checks
from trustusbank.manifests.kinds import KINDS, to_manifest
from trustusbank.manifests.manifest import Manifest, ManifestError, Problem
from trustusbank.manifests.yaml_source import read_documents, yaml_files

View = TypeVar("View")

NO_COMMAND = (
    "the embedded runtime starts the container's command; set spec.template.spec.containers[].command"
)


class Bundle:
    """The validated objects, with typed views and the links between them."""

    def __init__(self, objects: Iterable[Manifest]) -> None:
        self.objects = list(objects)
        self._views = [KINDS[(m.api_version, m.kind)].view(m) for m in self.objects]

    def replaced(self, objects: Iterable[Manifest]) -> Bundle:
        """A bundle of `objects` instead; how a controller's output stays a Bundle without
        the controller importing this module (it sits below the kinds it expands)."""
        return Bundle(objects)

    def _of(self, view_type: type[View]) -> list[View]:
        return [v for v in self._views if isinstance(v, view_type)]

    def namespaces(self) -> list[Namespace]:
        return self._of(Namespace)

    def service_accounts(self) -> list[ServiceAccount]:
        return self._of(ServiceAccount)

    def deployments(self) -> list[Deployment]:
        return self._of(Deployment)

    def services(self) -> list[Service]:
        return self._of(Service)

    def config_maps(self) -> list[ConfigMap]:
        return self._of(ConfigMap)

    def get(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        return next(
            (m for m in self.objects if (m.kind, m.namespace, m.name) == (kind, namespace, name)), None
        )

    def view(self, kind: str, namespace: str | None, name: str) -> object | None:
        """The typed view of one object, e.g. the `Deployment` a catalogue entry names."""
        return next(
            (
                v
                for m, v in zip(self.objects, self._views, strict=True)
                if (m.kind, m.namespace, m.name) == (kind, namespace, name)
            ),
            None,
        )

    def service_for(self, deployment: Deployment) -> list[Service]:
        """The Services whose selector picks this Deployment's pods."""
        return [s for s in self.services() if s.selects(deployment)]

    def deployment_for(self, service: Service) -> list[Deployment]:
        """The Deployments whose pods this Service's selector picks."""
        return [d for d in self.deployments() if service.selects(d)]


@dataclass(frozen=True)
class CheckReport:
    objects: list[Manifest]
    problems: list[Problem]


def _files(path: Path, include: Sequence[Path], exclude: Sequence[Path]) -> list[Path]:
    skipped = [e.resolve() for e in exclude]
    found = [f for f in yaml_files(path) if not any(f.resolve().is_relative_to(e) for e in skipped)]
    return found + [f for extra in include if extra.exists() for f in yaml_files(extra)]


def check_bundle(path: Path, *, include: Sequence[Path] = (), exclude: Sequence[Path] = ()) -> CheckReport:
    """Every problem in the bundle; raises only when `path` itself does not exist.

    `exclude` leaves out folders of `path` (a policy set applied separately);
    `include` adds files or folders from elsewhere (what has been applied). An included object
    with the kind, namespace and name of one in `path` replaces it, as `kubectl apply`
    configures an object that exists; two declarations within `path`, or within `include`,
    are still a problem.
    """
    if not path.exists():
        raise ManifestError([Problem(path, 0, "no such file or directory; expected the manifest bundle")])
    files = _files(path, include, exclude)
    if not files:
        return CheckReport([], [Problem(path, 0, "no *.yaml or *.yml files found")])
    included = {f.resolve() for extra in include if extra.exists() for f in yaml_files(extra)}
    objects: list[Manifest] = []
    problems: list[Problem] = []
    for file in files:
        documents, read_problems = read_documents(file)
        problems += read_problems
        for document in documents:
            manifest, manifest_problems = to_manifest(document)
            problems += manifest_problems
            if manifest is not None:
                objects.append(manifest)
    objects = _applied_over_declared(objects, included)
    bundle = Bundle(objects)
    problems += [p for check in CHECKS for p in check(bundle)]
    return CheckReport(objects, sorted(problems))


def _applied_over_declared(objects: list[Manifest], included: set[Path]) -> list[Manifest]:
    """`objects` without the bundle's own declarations of what an included file declares again."""

    def key(m: Manifest) -> tuple[str, str | None, str]:
        return (m.kind, m.namespace, m.name)

    applied = {key(m) for m in objects if m.source.file.resolve() in included}
    return [m for m in objects if m.source.file.resolve() in included or key(m) not in applied]


def load_bundle(path: Path, *, include: Sequence[Path] = (), exclude: Sequence[Path] = ()) -> Bundle:
    """The bundle, or a `ManifestError` listing everything wrong with it."""
    report = check_bundle(path, include=include, exclude=exclude)
    if report.problems:
        raise ManifestError(report.problems)
    return Bundle(report.objects)


def _namespaces_declared(bundle: Bundle) -> Iterator[Problem]:
    declared = {n.name for n in bundle.namespaces()}
    for m in bundle.objects:
        if not KINDS[(m.api_version, m.kind)].namespaced:
            continue
        if m.namespace is None:
            yield m.problem(("metadata",), "no metadata.namespace; say which declared namespace it lives in")
        elif m.namespace not in declared:
            message = f"namespace {m.namespace!r} is not declared in the bundle"
            yield m.problem(("metadata", "namespace"), message)


def _unique(bundle: Bundle) -> Iterator[Problem]:
    seen: dict[tuple[str, str | None, str], Manifest] = {}
    for m in bundle.objects:
        first = seen.setdefault((m.kind, m.namespace, m.name), m)
        if first is not m:
            yield m.problem(("metadata", "name"), f"declared twice; first at {first.source}")


def _service_account_declared(bundle: Bundle) -> Iterator[Problem]:
    accounts = {(a.namespace, a.name) for a in bundle.service_accounts()}
    for d in bundle.deployments():
        # Kubernetes creates "default" in every namespace, so only a named account must be declared.
        if d.service_account != "default" and (d.namespace, d.service_account) not in accounts:
            path = ("spec", "template", "spec", "serviceAccountName")
            message = f"serviceAccountName {d.service_account!r} has no ServiceAccount in {d.namespace!r}"
            yield d.manifest.problem(path, message)


def _selector_matches_template(bundle: Bundle) -> Iterator[Problem]:
    for d in bundle.deployments():
        if not d.selector.matches(d.pod_labels):
            yield d.manifest.problem(
                ("spec", "selector"), "spec.selector does not match spec.template.metadata.labels"
            )


def _service_selects_deployment(bundle: Bundle) -> Iterator[Problem]:
    for s in bundle.services():
        if s.selector and not bundle.deployment_for(s):
            yield s.manifest.problem(
                ("spec", "selector"), f"selector {s.selector} matches no Deployment in {s.namespace!r}"
            )


def _target_ports_exist(bundle: Bundle) -> Iterator[Problem]:
    for s in bundle.services():
        for d in bundle.deployment_for(s):
            ports = [p for c in d.containers for p in c.ports]
            for index, port in enumerate(s.ports):
                if isinstance(port.target_port, int):
                    found = any(p.container_port == port.target_port for p in ports)
                else:
                    found = any(p.name == port.target_port for p in ports)
                if not found:
                    message = f"targetPort {port.target_port!r} is not a containerPort of Deployment {d.name}"
                    yield s.manifest.problem(("spec", "ports", index, "targetPort"), message)


def _commands_runnable(bundle: Bundle) -> Iterator[Problem]:
    """The embedded runtime runs `trustusbank serve <workload>`; anything else it cannot honour."""
    for d in bundle.deployments():
        for index, container in enumerate(d.containers):
            path = ("spec", "template", "spec", "containers", index)
            command = container.command
            if not command:
                yield d.manifest.problem(path, f"container {container.name!r}: {NO_COMMAND}")
            elif command[:2] != ["trustusbank", "serve"] or len(command) < 3 or command[2] not in BUILDS:
                message = (
                    f"container {container.name!r}: the embedded runtime can only start "
                    f"`trustusbank serve <workload>` with one of: {', '.join(BUILDS)}; got {command[:3]}"
                )
                yield d.manifest.problem((*path, "command"), message)


CHECKS: list[Callable[[Bundle], Iterable[Problem]]] = [
    _namespaces_declared,
    _unique,
    _service_account_declared,
    _selector_matches_template,
    _service_selects_deployment,
    _target_ports_exist,
    _commands_runnable,
    kagent_checks.agents_resolve,
    kagent_checks.agent_cycles,
    kagent_checks.access_policy_references,
    kagent_checks.chatbot_agents_declared,
]
