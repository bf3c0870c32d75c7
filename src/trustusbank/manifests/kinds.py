"""The kinds a bundle may contain, and how each is validated and viewed.

`KINDS` is the one place to extend: a new kind is one entry saying whether it is
namespaced, how its raw document is validated, and which typed view it becomes.
Core kinds are checked against the real Kubernetes OpenAPI schema in strict mode,
so a misspelt field is an error here rather than something a cluster drops silently.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from trustusbank.manifests import prometheus
from trustusbank.manifests.core import ConfigMap, Deployment, Namespace, Secret, Service, ServiceAccount
from trustusbank.manifests.gateway import objects as gateway
from trustusbank.manifests.gateway import schema as gateway_schema
from trustusbank.manifests.istio import schema as istio_schema
from trustusbank.manifests.istio.objects import AuthorizationPolicy, PeerAuthentication
from trustusbank.manifests.kagent import objects as kagent
from trustusbank.manifests.kagent import schema as kagent_schema
from trustusbank.manifests.manifest import JsonPath, Manifest, Problem, Source
from trustusbank.manifests.schema import FieldError, Validator
from trustusbank.manifests.yaml_source import Document


@dataclass(frozen=True)
class KindSpec:
    namespaced: bool
    validate: Validator
    view: Callable[[Manifest], object]


def kubernetes_schema(api_version: str, kind: str) -> Validator:
    """A strict validator for a built-in kind, loaded on first use (the schemas are large)."""

    def validate(body: dict[str, Any]) -> list[FieldError]:
        validator = _schema_validator(api_version, kind)
        return [found for error in validator.iter_errors(body) for found in field_errors(error)]

    return validate


OBJECT_META = (
    "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)


def json_schema(spec_schema: dict[str, Any], *checks: Validator) -> Validator:
    """A strict validator for a custom resource: Kubernetes' own ObjectMeta for `metadata`,
    `spec_schema` for `spec`, then `checks` (the rules a cluster's webhook or CEL would apply),
    which run only on a document the schema accepts, so they can rely on its types."""
    schema = {
        "type": "object",
        "required": ["apiVersion", "kind"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"$ref": OBJECT_META},
            "spec": spec_schema,
            "status": {"type": "object"},
        },
    }

    @functools.cache
    def validator() -> jsonschema.Draft202012Validator:
        _, definitions = _definitions()
        return jsonschema.Draft202012Validator(schema, registry=definitions @ Registry())

    def validate(body: dict[str, Any]) -> list[FieldError]:
        errors = [found for error in validator().iter_errors(body) for found in field_errors(error)]
        return errors or [error for check in checks for error in check(body)]

    return validate


_AUTHORIZATION_POLICY = KindSpec(
    True,
    json_schema(istio_schema.AUTHORIZATION_POLICY_SPEC, istio_schema.check_authorization_policy),
    AuthorizationPolicy.from_manifest,
)
_PEER_AUTHENTICATION = KindSpec(
    True,
    json_schema(istio_schema.PEER_AUTHENTICATION_SPEC, istio_schema.check_peer_authentication),
    PeerAuthentication.from_manifest,
)
_GATEWAY = KindSpec(
    True,
    json_schema(gateway_schema.GATEWAY_SPEC, gateway_schema.check_gateway),
    gateway.Gateway.from_manifest,
)
_HTTP_ROUTE = KindSpec(
    True,
    json_schema(gateway_schema.HTTP_ROUTE_SPEC, gateway_schema.check_http_route),
    gateway.HTTPRoute.from_manifest,
)


def _secret(body: dict[str, Any]) -> list[FieldError]:
    """The Secret schema, then `data` values must be base64 (the schema's `format: byte`, which
    jsonschema does not check)."""
    errors = kubernetes_schema("v1", "Secret")(body)
    if errors:
        return errors
    for key, value in (body.get("data") or {}).items():
        try:
            base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError):
            errors.append((("data", key), "not base64; put plain text under stringData"))
    return errors


KINDS: dict[tuple[str, str], KindSpec] = {
    ("v1", "Namespace"): KindSpec(False, kubernetes_schema("v1", "Namespace"), Namespace.from_manifest),
    ("v1", "ServiceAccount"): KindSpec(
        True, kubernetes_schema("v1", "ServiceAccount"), ServiceAccount.from_manifest
    ),
    ("v1", "Service"): KindSpec(True, kubernetes_schema("v1", "Service"), Service.from_manifest),
    ("v1", "ConfigMap"): KindSpec(True, kubernetes_schema("v1", "ConfigMap"), ConfigMap.from_manifest),
    ("v1", "Secret"): KindSpec(True, _secret, Secret.from_manifest),
    ("apps/v1", "Deployment"): KindSpec(
        True, kubernetes_schema("apps/v1", "Deployment"), Deployment.from_manifest
    ),
    # Istio serves v1 and v1beta1 of both with the same schema.
    ("security.istio.io/v1", "AuthorizationPolicy"): _AUTHORIZATION_POLICY,
    ("security.istio.io/v1beta1", "AuthorizationPolicy"): _AUTHORIZATION_POLICY,
    ("security.istio.io/v1", "PeerAuthentication"): _PEER_AUTHENTICATION,
    ("security.istio.io/v1beta1", "PeerAuthentication"): _PEER_AUTHENTICATION,
    # Gateway API serves v1 and v1beta1 of both with the same schema.
    ("gateway.networking.k8s.io/v1", "Gateway"): _GATEWAY,
    ("gateway.networking.k8s.io/v1beta1", "Gateway"): _GATEWAY,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _HTTP_ROUTE,
    ("gateway.networking.k8s.io/v1beta1", "HTTPRoute"): _HTTP_ROUTE,
    ("agentgateway.dev/v1alpha1", "AgentgatewayBackend"): KindSpec(
        True,
        json_schema(gateway_schema.AGENTGATEWAY_BACKEND_SPEC, gateway_schema.check_agentgateway_backend),
        gateway.AgentgatewayBackend.from_manifest,
    ),
    ("agentgateway.dev/v1alpha1", "AgentgatewayPolicy"): KindSpec(
        True,
        json_schema(gateway_schema.AGENTGATEWAY_POLICY_SPEC, gateway_schema.check_agentgateway_policy),
        gateway.AgentgatewayPolicy.from_manifest,
    ),
    (kagent.KAGENT_API, "Agent"): KindSpec(
        True, json_schema(kagent_schema.AGENT_SPEC, kagent_schema.check_agent), kagent.Agent.from_manifest
    ),
    (kagent.KAGENT_API, "ModelConfig"): KindSpec(
        True,
        json_schema(kagent_schema.MODEL_CONFIG_SPEC, kagent_schema.check_model_config),
        kagent.ModelConfig.from_manifest,
    ),
    (kagent.KAGENT_API, "RemoteMCPServer"): KindSpec(
        True,
        json_schema(kagent_schema.REMOTE_MCP_SERVER_SPEC, kagent_schema.check_remote_mcp_server),
        kagent.RemoteMCPServer.from_manifest,
    ),
    (kagent.ACCESS_API, "AccessPolicy"): KindSpec(
        True,
        json_schema(kagent_schema.ACCESS_POLICY_SPEC, kagent_schema.check_access_policy),
        kagent.AccessPolicy.from_manifest,
    ),
    # Prometheus Operator; its expressions must also be runnable by the embedded alert evaluator.
    (prometheus.API_VERSION, prometheus.KIND): KindSpec(
        True,
        json_schema(prometheus.PROMETHEUS_RULE_SPEC, prometheus.check_prometheus_rule),
        prometheus.PrometheusRule.from_manifest,
    ),
}


def known_kinds() -> str:
    return ", ".join(f"{kind} ({api})" for api, kind in sorted(KINDS, key=lambda k: (k[1], k[0])))


def to_manifest(document: Document) -> tuple[Manifest | None, list[Problem]]:
    """Validate one document against its kind; a document with any problem yields no Manifest."""
    data = document.data
    api_version, kind = data.get("apiVersion"), data.get("kind")

    def problem(path: Sequence[str | int], message: str) -> Problem:
        return Problem(document.file, document.line_of(path), message)

    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None, [problem((), "a manifest needs both apiVersion and kind")]
    spec = KINDS.get((api_version, kind))
    if spec is None:
        message = f"unknown kind {kind!r} (apiVersion {api_version!r}); known kinds: {known_kinds()}"
        return None, [problem(("kind",), message)]

    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    ref = f"{kind} {name or '<unnamed>'}"
    problems = [problem(path, f"{ref}: {dotted(path)}: {message}") for path, message in spec.validate(data)]
    if not isinstance(name, str) or not name:
        problems.append(problem(("metadata",), f"{ref}: metadata.name is required"))
    if problems or not isinstance(name, str) or not isinstance(metadata, dict):
        return None, problems

    return Manifest(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=metadata.get("namespace") or None,
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        body=data,
        source=Source(document.file, document.line),
        positions=document.positions,
    ), []


def dotted(path: Sequence[str | int]) -> str:
    """A field path as people write it: `spec.template.spec.containers[0].image`."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "(document)"


@functools.cache
def _definitions() -> tuple[str, Resource]:
    version = kubernetes_validate.latest_version()
    directory = f"kubernetes-json-schema/v{version}-local-strict"
    contents = schema_contents(f"{directory}/_definitions.json", version)
    return directory, Resource.from_contents(contents)


@functools.cache
def _schema_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    # The same file naming as kubernetes_validate.validate, which only ever reports the first error.
    directory, definitions = _definitions()
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(f"{directory}/{kind.lower()}-{api}.json", kubernetes_validate.latest_version())
    registry = definitions @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def field_errors(error: jsonschema.ValidationError) -> list[FieldError]:
    """Phrase an error so it points at the offending field, not at the object holding it.

    One phrasing for every Kubernetes schema check: `manifests check` here, and `k8s.schemas`
    (the pinned cluster version, with the formats the API server enforces)."""
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties") or {})
        return [
            ((*path, key), f"unknown field{_suggestion(key, allowed)}")
            for key in error.instance
            if key not in allowed
        ]
    if error.validator == "type":
        expected = [t for t in _as_list(error.validator_value) if t != "null"]
        return [(path, f"expected {' or '.join(expected)}, got {_json_type(error.instance)}")]
    if error.validator == "format" and error.validator_value == "byte":
        return [(path, "not base64; put plain text under stringData")]
    if error.validator == "oneOf" and error.context:
        expected = [
            t for sub in error.context if sub.validator == "type" for t in _as_list(sub.validator_value)
        ]
        kinds = sorted({t for t in expected if t != "null"})
        if kinds:
            return [(path, f"expected {' or '.join(kinds)}, got {_json_type(error.instance)}")]
    return [(path, error.message)]


def _suggestion(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
