"""What Kubernetes mode applies is checked as the cluster would: deploy/ passes, and a broken
document is reported with its file, its place in the file, its object and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.errors import ConfigError
from trustusbank.k8s import schemas
from trustusbank.k8s.versions import KUBERNETES_VERSION
from trustusbank.manifests.kinds import KINDS
from trustusbank.manifests.yaml_source import read_documents, yaml_files

ACCOUNT_MCP = DEPLOY / "05-mcp-servers" / "account-mcp.yaml"
DEPLOYMENT = "Deployment trustusbank-bank-mcp/account-mcp"
CONTAINER = "spec.template.spec.containers[0]"


def _broken(tmp_path: Path, old: str, new: str, source: Path = ACCOUNT_MCP) -> Path:
    """A copy of `source` with one exact edit, so the test breaks one field of a real manifest."""
    text = source.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {source}"
    target = tmp_path / source.name
    target.write_text(text.replace(old, new))
    return target


def _line_of(file: Path, fragment: str) -> int:
    [line] = [n for n, text in enumerate(file.read_text().splitlines(), 1) if fragment in text]
    return line


def test_every_document_in_deploy_validates() -> None:
    documents = [d for f in yaml_files(DEPLOY) for d in read_documents(f)[0]]
    kinds = {(d.data["apiVersion"], d.data["kind"]) for d in documents}
    built_in = {k for k in kinds if schemas.is_built_in(*k)}
    # Both halves are exercised: Kubernetes' own schemas and the project's custom-resource schemas.
    assert {("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "Namespace")} <= built_in
    assert kinds - built_in <= set(KINDS)
    assert ("monitoring.coreos.com/v1", "PrometheusRule") in kinds - built_in

    assert schemas.validate(documents) == []
    assert schemas.validate_path(DEPLOY) == []


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        (
            "          image: localhost",
            "          imagee: localhost",
            f"{CONTAINER}.imagee",
            "unknown field (did you mean 'image'?)",
        ),
        ("  replicas: 1", '  replicas: "one"', "spec.replicas", "expected integer, got string"),
        ("  replicas: 1", "  replicas: 4294967296", "spec.replicas", "is not a 'int32'"),
        (
            "              containerPort: 8000",
            "              containerPort: [8000]",
            f"{CONTAINER}.ports[0].containerPort",
            "expected integer, got array",
        ),
        (
            "  replicas: 1",
            "  replicas: 1\n  minReadySecond: 5",
            "spec.minReadySecond",
            "unknown field (did you mean 'minReadySeconds'?)",
        ),
    ],
)
def test_a_broken_deployment_is_reported_with_its_file_document_and_field(
    tmp_path: Path, old: str, new: str, path: str, message: str
) -> None:
    file = _broken(tmp_path, old, new)
    [problem] = schemas.validate_path(file)
    assert (problem.file, problem.index, problem.object, problem.path) == (file, 1, DEPLOYMENT, path)
    assert message in problem.message
    assert problem.line == _line_of(file, path.rsplit(".", 1)[-1].split("[")[0] + ":")
    assert str(problem).startswith(f"{file}:{problem.line}: document 1: {DEPLOYMENT}: {path}: ")


def test_a_missing_required_field_is_reported(tmp_path: Path) -> None:
    file = _broken(tmp_path, "- name: server\n          image:", "- image:")
    problems = schemas.validate_path(file)
    assert [(p.path, p.message) for p in problems] == [(f"{CONTAINER}", "'name' is a required property")]


def test_every_problem_of_a_document_is_reported_not_only_the_first(tmp_path: Path) -> None:
    file = _broken(tmp_path, "  replicas: 1", '  replicas: "one"\n  paused: "no"')
    assert [p.path for p in schemas.validate_path(file)] == ["spec.replicas", "spec.paused"]


def test_the_document_index_counts_the_documents_of_the_file(tmp_path: Path) -> None:
    service = _broken(tmp_path, "      targetPort: 8000", "      targetPort: [8000]")
    [problem] = schemas.validate_path(service)
    assert (problem.index, problem.object, problem.path) == (
        2,
        "Service trustusbank-bank-mcp/account-mcp",
        "spec.ports[0].targetPort",
    )
    assert problem.message == "expected integer or string, got array"


def test_a_secret_whose_data_is_not_base64_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "secret.yaml"
    file.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\n"
        "data: {good: aGVsbG8=, bad: 'hello world'}\nstringData: {plain: 'hello world'}\n"
    )
    [problem] = schemas.validate_path(file)
    assert (problem.path, problem.message) == ("data.bad", "not base64; put plain text under stringData")


def test_built_in_kinds_beyond_the_embedded_runtime_are_checked_too(tmp_path: Path) -> None:
    """Kubernetes mode may apply kinds the embedded runtime has no use for (a NetworkPolicy)."""
    file = tmp_path / "netpol.yaml"
    file.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: n}\n"
        "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n"
    )
    assert ("networking.k8s.io/v1", "NetworkPolicy") not in KINDS
    assert schemas.validate_path(file) == []
    file.write_text(file.read_text().replace("podSelector", "podSelectr"))
    assert [p.path for p in schemas.validate_path(file)] == ["spec.podSelectr"]


def test_custom_resources_are_checked_against_the_project_schemas(tmp_path: Path) -> None:
    """Gateway API's group ends in .k8s.io but is no built-in: it goes to the project's schema."""
    assert not schemas.is_built_in("gateway.networking.k8s.io/v1", "HTTPRoute")
    route = DEPLOY / "06-agentgateway" / "httproutes.yaml"
    file = tmp_path / route.name
    file.write_text(route.read_text().replace("parentRefs", "parentRef", 1))  # in the first route only
    [problem] = schemas.validate_path(file)
    assert (problem.index, problem.path) == (0, "spec.parentRef")
    assert problem.message.startswith("unknown field")

    policy = _broken(
        tmp_path, "  action: DENY", "  action: BLOCK", DEPLOY / "08-defence" / "deny-bank-to-attacker.yaml"
    )
    [problem] = schemas.validate_path(policy)
    assert (problem.object, problem.path) == (
        "AuthorizationPolicy external-attacker/deny-bank-to-attacker",
        "spec.action",
    )


def test_a_kind_with_no_schema_is_a_problem_not_a_pass(tmp_path: Path) -> None:
    file = tmp_path / "unknown.yaml"
    file.write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n"
        # Removed from Kubernetes in 1.25: the pinned version does not serve it.
        "apiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata: {name: p}\nspec: {}\n"
    )
    problems = schemas.validate_path(file)
    assert [(p.index, p.path) for p in problems] == [(0, "kind"), (1, "kind")]
    assert f"not a Kubernetes {KUBERNETES_VERSION} kind" in problems[1].message


def test_a_document_without_a_name_or_kind_is_reported(tmp_path: Path) -> None:
    file = tmp_path / "nameless.yaml"
    file.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: n}\n---\nmetadata: {name: x}\n")
    problems = schemas.validate_path(file)
    assert [(p.index, p.object, p.message) for p in problems] == [
        (0, "ConfigMap n/<unnamed>", "metadata.name is required: kubectl apply cannot apply it"),
        (1, "<no kind> x", "a manifest needs both apiVersion and kind"),
    ]


def test_unreadable_yaml_and_a_missing_path_are_problems(tmp_path: Path) -> None:
    shutil.copy(ACCOUNT_MCP, tmp_path / "good.yaml")
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n")
    [problem] = schemas.validate_path(tmp_path)
    assert problem.file == tmp_path / "bad.yaml"
    assert "YAML syntax error" in problem.message
    [missing] = schemas.validate_path(tmp_path / "absent")
    assert missing.message == "no such file or directory"
    (tmp_path / "empty").mkdir()
    [empty] = schemas.validate_path(tmp_path / "empty")
    assert empty.message == "no *.yaml or *.yml files found"


def test_a_kubernetes_version_the_installed_schemas_lack_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas, "KUBERNETES_VERSION", "1.99")
    schemas._definitions.cache_clear()
    schemas._definition_names.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"ships no schemas for Kubernetes 1\.99; install"):
            schemas.validate_path(ACCOUNT_MCP)
    finally:
        schemas._definitions.cache_clear()
        schemas._definition_names.cache_clear()
