"""The manifest loader: typed values from a good bundle, and every mistake reported at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import FIXTURES
from trustusbank.manifests.bundle import NO_COMMAND, check_bundle, load_bundle
from trustusbank.manifests.core import ContainerPort, ServicePort
from trustusbank.manifests.kinds import KINDS, KindSpec
from trustusbank.manifests.manifest import ManifestError, Problem

VALID = FIXTURES / "manifests" / "valid"

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
"""

# Line numbers below are the ones the assertions expect.
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
        - name: server
          image: api:1
          command: ["trustusbank", "serve", "fx-api"]
          ports:
            - name: http
              containerPort: 8000
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
spec:
  selector:
    app: api
  ports:
    - port: 80
      targetPort: 8000
"""


def write_bundle(root: Path, files: dict[str, str]) -> Path:
    """A bundle with the `shop` namespace declared, plus `files`."""
    (root / "00-namespace.yaml").write_text(NAMESPACE)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def problems(root: Path) -> list[tuple[str, int, str]]:
    return [(p.file.name, p.line, p.message) for p in check_bundle(root).problems]


def test_valid_bundle_loads_typed_values() -> None:
    bundle = load_bundle(VALID)

    assert len(bundle.objects) == 7
    shop, jobs = sorted(bundle.namespaces(), key=lambda n: n.name, reverse=True)
    assert (shop.name, shop.ambient, shop.use_waypoint) == ("shop", True, "shop-waypoint")
    assert (jobs.name, jobs.ambient, jobs.use_waypoint) == ("jobs", False, None)
    assert [(a.namespace, a.name) for a in bundle.service_accounts()] == [("shop", "shop-api")]
    assert bundle.config_maps()[0].data == {"currency": "GBP", "opened": "2024-01-31"}

    api, worker = bundle.deployments()
    assert (api.name, api.namespace, api.replicas, api.service_account) == ("shop-api", "shop", 2, "shop-api")
    assert api.labels == {"app": "shop-api"}
    assert api.pod_labels == {"app": "shop-api", "version": "1.0.0"}
    (server,) = api.containers
    assert server.image == "localhost:5001/shop-api:1.0.0"
    assert server.command == ["trustusbank", "serve", "fx-api"]
    assert server.args == ["--port", "8000"]
    assert server.env == {"CURRENCY": "GBP"}
    assert server.env_value_from == {"POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert server.ports == [ContainerPort("http", 8000, "TCP"), ContainerPort("metrics", 9090, "TCP")]
    assert (worker.replicas, worker.service_account, worker.containers[0].args) == (1, "default", [])

    (service,) = bundle.services()
    assert service.fqdn == "shop-api.shop.svc.cluster.local"
    assert service.ports == [
        ServicePort("http", 80, "http", "TCP"),
        ServicePort("metrics", 9090, 9090, "TCP"),
    ]
    assert bundle.service_for(api) == [service]
    assert bundle.service_for(worker) == []
    assert bundle.deployment_for(service) == [api]


def test_manifest_remembers_file_and_line() -> None:
    bundle = load_bundle(VALID)
    manifest = bundle.get("Deployment", "shop", "shop-api")

    assert manifest is not None
    assert manifest.source.file == VALID / "10-shop" / "shop.yaml"
    assert manifest.source.line == 16
    assert manifest.path_line(("spec", "template", "spec", "containers", 0, "command")) == 38
    assert manifest.path_line(("spec", "template", "spec", "containers", 0, "ports", 1)) == 50
    assert manifest.path_line(("spec", "strategy", "type")) == 23  # absent: the nearest ancestor
    assert bundle.get("Deployment", "shop", "missing") is None


def test_single_file_is_a_bundle(tmp_path: Path) -> None:
    write_bundle(tmp_path, {})

    bundle = load_bundle(tmp_path / "00-namespace.yaml")

    assert [n.name for n in bundle.namespaces()] == ["shop"]


def test_misspelt_field_names_path_and_line(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT.replace("command:", "comand:")})

    assert problems(tmp_path) == [
        (
            "app.yaml",
            18,
            "Deployment api: spec.template.spec.containers[0].comand: "
            "unknown field (did you mean 'command'?)",
        )
    ]


def test_every_schema_error_in_a_document_is_reported(tmp_path: Path) -> None:
    broken = DEPLOYMENT.replace("spec:\n  selector", "spec:\n  replicas: two\n  selector").replace(
        "containerPort: 8000", 'containerPort: "8000"'
    )
    write_bundle(tmp_path, {"app.yaml": broken})

    assert problems(tmp_path) == [
        ("app.yaml", 7, "Deployment api: spec.replicas: expected integer, got string"),
        (
            "app.yaml",
            22,
            "Deployment api: spec.template.spec.containers[0].ports[0].containerPort: "
            "expected integer, got string",
        ),
    ]


def test_unknown_kind(tmp_path: Path) -> None:
    write_bundle(
        tmp_path, {"widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"}
    )

    ((file, line, message),) = problems(tmp_path)

    assert (file, line) == ("widget.yaml", 2)
    assert message.startswith("unknown kind 'Widget' (apiVersion 'example.com/v1'); known kinds: ")
    assert "Deployment (apps/v1)" in message
    assert "Namespace (v1)" in message


def test_document_without_kind(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": "---\nmetadata:\n  name: x\n"})

    assert problems(tmp_path) == [("app.yaml", 2, "a manifest needs both apiVersion and kind")]


def test_missing_name(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT.replace("  name: api\n", "")})

    assert problems(tmp_path) == [("app.yaml", 3, "Deployment <unnamed>: metadata.name is required")]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT.replace("namespace: shop", "namespace: shop: x")})

    assert problems(tmp_path) == [("app.yaml", 5, "YAML syntax error: mapping values are not allowed here")]


def test_duplicate_key(tmp_path: Path) -> None:
    write_bundle(
        tmp_path, {"app.yaml": DEPLOYMENT.replace("      app: api\n", "      app: api\n      app: x\n", 1)}
    )

    assert problems(tmp_path) == [("app.yaml", 10, "duplicate key 'app' (first set on line 9)")]


def test_non_mapping_document(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": "# a list is not a manifest\n- a\n- b\n"})

    assert problems(tmp_path) == [("app.yaml", 2, "a manifest must be a mapping, not a sequence")]


def test_namespace_not_declared(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT.replace("namespace: shop", "namespace: shopp")})

    assert problems(tmp_path) == [
        ("app.yaml", 5, "Deployment shopp/api: namespace 'shopp' is not declared in the bundle")
    ]


def test_namespaced_object_without_namespace(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: bot\n"})

    assert problems(tmp_path) == [
        ("sa.yaml", 3, "ServiceAccount bot: no metadata.namespace; say which declared namespace it lives in")
    ]


def test_duplicate_object(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"a.yaml": DEPLOYMENT, "b.yaml": "# again\n" + DEPLOYMENT})

    assert problems(tmp_path) == [
        ("b.yaml", 5, f"Deployment shop/api: declared twice; first at {tmp_path / 'a.yaml'}:1")
    ]


def test_an_included_object_replaces_the_bundles_own(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    bundle = write_bundle(tmp_path / "deploy", {"a.yaml": DEPLOYMENT})
    applied = tmp_path / "applied"
    applied.mkdir()
    (applied / "b.yaml").write_text(DEPLOYMENT.replace("api:1", "api:2"))

    loaded = load_bundle(bundle, include=[applied])

    [deployment] = loaded.deployments()
    assert deployment.manifest.source.file == applied / "b.yaml"
    assert deployment.containers[0].image == "api:2"


def test_two_included_declarations_are_still_a_problem(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    bundle = write_bundle(tmp_path / "deploy", {})
    applied = tmp_path / "applied"
    applied.mkdir()
    (applied / "a.yaml").write_text(DEPLOYMENT)
    (applied / "b.yaml").write_text(DEPLOYMENT)

    messages = [p.message for p in check_bundle(bundle, include=[applied]).problems]

    assert messages == [f"Deployment shop/api: declared twice; first at {applied / 'a.yaml'}:1"]


def test_service_account_not_declared(tmp_path: Path) -> None:
    broken = DEPLOYMENT.replace("    spec:\n", "    spec:\n      serviceAccountName: ghost\n")
    write_bundle(tmp_path, {"app.yaml": broken})

    assert problems(tmp_path) == [
        ("app.yaml", 15, "Deployment shop/api: serviceAccountName 'ghost' has no ServiceAccount in 'shop'")
    ]


def test_selector_not_matching_template(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT.replace("      app: api\n", "      app: apii\n", 1)})

    assert problems(tmp_path) == [
        ("app.yaml", 7, "Deployment shop/api: spec.selector does not match spec.template.metadata.labels")
    ]


def test_service_selecting_no_deployment(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT, "svc.yaml": SERVICE.replace("app: api", "app: nope")})

    assert problems(tmp_path) == [
        ("svc.yaml", 7, "Service shop/api: selector {'app': 'nope'} matches no Deployment in 'shop'")
    ]


@pytest.mark.parametrize("target", ["8001", "grpc"])
def test_service_target_port_not_exposed(tmp_path: Path, target: str) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT, "svc.yaml": SERVICE.replace("8000", target)})
    shown = repr(int(target)) if target.isdigit() else repr(target)

    assert problems(tmp_path) == [
        ("svc.yaml", 11, f"Service shop/api: targetPort {shown} is not a containerPort of Deployment api")
    ]


def test_service_target_port_by_name_or_default(tmp_path: Path) -> None:
    by_name = SERVICE.replace("targetPort: 8000", "targetPort: http")
    by_default = SERVICE.replace("name: api", "name: api-direct").replace(
        "- port: 80\n      targetPort: 8000", "- port: 8000"
    )
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT, "svc.yaml": by_name, "svc2.yaml": by_default})

    assert problems(tmp_path) == []


def test_deployment_without_command(tmp_path: Path) -> None:
    write_bundle(
        tmp_path,
        {"app.yaml": DEPLOYMENT.replace('          command: ["trustusbank", "serve", "fx-api"]\n', "")},
    )

    assert problems(tmp_path) == [("app.yaml", 16, f"Deployment shop/api: container 'server': {NO_COMMAND}")]


@pytest.mark.parametrize(
    "command", ['["nginx", "-g", "daemon off;"]', '["trustusbank", "serve", "bitcoin-miner"]']
)
def test_command_the_embedded_runtime_cannot_run(tmp_path: Path, command: str) -> None:
    write_bundle(tmp_path, {"app.yaml": DEPLOYMENT.replace('["trustusbank", "serve", "fx-api"]', command)})

    [(file, line, message)] = problems(tmp_path)
    assert (file, line) == (
        "app.yaml",
        DEPLOYMENT.splitlines().index('          command: ["trustusbank", "serve", "fx-api"]') + 1,
    )
    assert "the embedded runtime can only start `trustusbank serve <workload>`" in message


def test_load_bundle_raises_with_every_problem_sorted(tmp_path: Path) -> None:
    write_bundle(
        tmp_path,
        {
            "b.yaml": DEPLOYMENT.replace("namespace: shop", "namespace: other"),
            "a.yaml": "apiVersion: v1\nkind: Nope\n",
        },
    )

    with pytest.raises(ManifestError) as caught:
        load_bundle(tmp_path)

    assert [(p.file.name, p.line) for p in caught.value.problems] == [("a.yaml", 2), ("b.yaml", 5)]
    assert str(caught.value).splitlines()[1] == (
        f"{tmp_path / 'b.yaml'}:5: Deployment other/api: namespace 'other' is not declared in the bundle"
    )


@pytest.mark.parametrize("name", ["missing-dir", "missing.yaml"])
def test_missing_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(ManifestError, match=f"{name}: no such file or directory"):
        load_bundle(tmp_path / name)
    with pytest.raises(ManifestError):
        check_bundle(tmp_path / name)


def test_directory_without_yaml(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")

    assert check_bundle(tmp_path).problems == [Problem(tmp_path, 0, "no *.yaml or *.yml files found")]


def test_problem_formats_as_file_and_line() -> None:
    assert str(Problem(Path("deploy/a.yaml"), 7, "bad")) == "deploy/a.yaml:7: bad"
    assert str(Problem(Path("deploy"), 0, "missing")) == "deploy: missing"


def test_a_new_kind_is_one_registry_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_port_80(body: dict) -> list:
        return [(("spec", "port"), "port 80 is reserved")] if body["spec"]["port"] == 80 else []

    spec = KindSpec(namespaced=True, validate=no_port_80, view=lambda manifest: manifest)
    monkeypatch.setitem(KINDS, ("example.com/v1", "Widget"), spec)
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: shop\n"
    widget += "spec:\n  port: 80\n"
    write_bundle(tmp_path, {"widget.yaml": widget})

    assert problems(tmp_path) == [("widget.yaml", 7, "Widget w: spec.port: port 80 is reserved")]
