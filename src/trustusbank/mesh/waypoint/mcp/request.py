"""MCP over streamable HTTP, parsed exactly as the MCP Python SDK server will execute it.

A gateway that judges a different request than the server executes is bypassable (a parser
differential), so this module accepts only what the SDK server (mcp 2.x) accepts *and* parses
unambiguously, and refuses everything else with `McpRefused`. What the SDK does, read from its
sources (paths under `site-packages/mcp`, line numbers of mcp 2.3.0):

* Era routing is by header only (`server/streamable_http_manager.py:194`): an
  `MCP-Protocol-Version` in `HANDSHAKE_PROTOCOL_VERSIONS` (or none at all) goes to the 2025-era
  session transport, anything else to the stateless 2026-07-28 entry, which rejects unknown
  versions and every method but POST (`server/_streamable_http_modern.py:402`, 405).
* Body size: `RequestBodyLimitMiddleware` answers 413 before parsing, default 4 MiB
  (`server/transport_security.py:15,146,162`); the gateway defaults to 1 MiB.
* Content-Type: both eras require it to start with `application/json`
  (`server/transport_security.py:94`); the session era also splits off parameters and compares
  exactly (`server/streamable_http.py:529-534`, 415). The gateway requires `application/json`
  with at most a `charset=utf-8` parameter.
* Accept: `check_accept_headers` (`server/streamable_http.py:87-102`, wildcards included) must
  find JSON, and SSE too unless the server runs in JSON-response mode (`streamable_http.py:536-556`,
  `_streamable_http_modern.py:405`); `subscriptions/listen` always needs SSE
  (`_streamable_http_modern.py:429`); a session GET needs SSE (`streamable_http.py:740`).
* JSON: the 2026 entry uses `json.loads(bytes)` (`_streamable_http_modern.py:412`), which
  keeps the last of duplicate keys, accepts NaN/Infinity, a UTF-8 BOM, UTF-16/32 and lone
  surrogates; the session era uses `pydantic_core.from_json` (`streamable_http.py:581`), which
  also keeps the last duplicate and accepts NaN/Infinity but rejects surrogates and nests at
  most ~200 deep. The gateway accepts only strict UTF-8 without BOM, no duplicate keys at any
  depth, no NaN/Infinity, no lone surrogates, depth <= `MAX_DEPTH`, and then requires both
  server parsers' results to be identical (types included) to its own.
* Batches: **rejected by both eras** - the session era validates the body with
  `jsonrpc_message_adapter.validate_python` (`streamable_http.py:588`), a union of single
  message models, so an array fails (400, -32602); the 2026 entry validates
  `JSONRPCRequest.model_validate(decoded)` (`_streamable_http_modern.py:422`, 400, -32600).
  The gateway refuses every JSON array (400, -32600) rather than pass it through.
* Envelope: `JSONRPCRequest` (`mcp_types/jsonrpc.py:32-45`) takes `id` as a strict int or a
  string (so not bool, float or null) and `params` as an object; unknown members are ignored
  by pydantic, so the gateway refuses them. A body without `id` is a notification
  (`_streamable_http_modern.py:418`); the 2026 entry rejects posted responses (-32600), the
  session era accepts them (202), e.g. answers to elicitation.
* 2026 headers (`shared/inbound.py:448-471`): `MCP-Protocol-Version` must equal
  `params._meta["io.modelcontextprotocol/protocolVersion"]`, `Mcp-Method` must equal the body
  method (a missing header is a mismatch), and for `tools/call`, `prompts/get` (`name`) and
  `resources/read` (`uri`) `Mcp-Name` must equal the body value after the SDK's
  `=?base64?...?=` decoding; a routing header sent twice is rejected
  (`_streamable_http_modern.py:436`). The session era ignores these headers, so the gateway
  judges by the body there and refuses any such header that disagrees with it.
  `Mcp-Param-*` headers are never trusted: decisions read the body's arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from mcp.shared.inbound import NAME_BEARING_METHODS, decode_header_value
from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.jsonrpc import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from trustusbank.errors import RefusedError
from trustusbank.mesh.waypoint.mcp.strict_json import JsonError, loads

MAX_BODY_DEFAULT: Final = 1024 * 1024
"""Largest POST body judged (bytes); the SDK's own default limit is 4 MiB."""

PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
METHOD_HEADER: Final = "mcp-method"
NAME_HEADER: Final = "mcp-name"
SESSION_HEADER: Final = "mcp-session-id"

_NAME_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {**NAME_BEARING_METHODS, "resources/subscribe": "uri", "resources/unsubscribe": "uri"}
)
"""Method -> params key that names its target; `Mcp-Name` must agree with it when present."""

_SINGLE_HEADERS: Final = frozenset(
    {
        PROTOCOL_VERSION_HEADER,
        METHOD_HEADER,
        NAME_HEADER,
        SESSION_HEADER,
        "content-type",
        "content-length",
        "accept",
    }
)
"""Headers whose duplicates a first-copy and a last-copy reader would disagree on."""

AGENTGATEWAY_METHODS: Final = frozenset(
    {
        "server/discover",
        "ping",
        "initialize",
        "completion/complete",
        "logging/setLevel",
        "prompts/get",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "subscriptions/listen",
        "resources/subscribe",
        "resources/unsubscribe",
        "tools/call",
        "tools/list",
        "tasks/get",
        "tasks/update",
        "tasks/cancel",
    }
)
"""The client requests agentgateway v1.4.1 serves (`is_known_client_request_method`, mcp/mod.rs).

Any other request method, `tasks/list` and `tasks/result` included, is answered by agentgateway
with "unsupported method" (`UpstreamError::InvalidMethod`, mcp/session.rs) and never forwarded;
notifications and posted responses are not requests and are not limited by this list.
"""

TASK_METHODS: Final = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
"""Judged on `mcp.task` with the task id as its name (`authorize_task_request`, mcp/session.rs)."""

_SESSION_ID = re.compile(r"^[\x21-\x7E]+$")  # server/streamable_http.py:78
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_REQUEST_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params"})
_ERROR_KEYS: Final = frozenset({"code", "message", "data"})


@dataclass(frozen=True)
class McpMessage:
    """One JSON-RPC message as the server will dispatch it, with the targets policies read."""

    kind: Literal["request", "notification", "response"]
    id: str | int | None
    method: str | None
    params: Mapping[str, Any]
    tool_name: str | None
    tool_arguments: Mapping[str, Any] | None
    prompt_name: str | None
    resource_uri: str | None
    task_id: str | None = None
    subscribed_uris: tuple[str, ...] = ()
    """`subscriptions/listen`: the resources whose updates it asks for, each judged as a read."""

    @property
    def agentgateway_serves(self) -> bool:
        """False for a request whose method agentgateway refuses as unsupported."""
        return self.kind != "request" or self.method in AGENTGATEWAY_METHODS


@dataclass(frozen=True)
class McpRequest:
    """One HTTP request to an MCP endpoint; `messages` is empty for GET and DELETE."""

    http_method: str
    protocol_version: str | None
    session_id: str | None
    messages: tuple[McpMessage, ...]
    batch: bool


class McpRefused(RefusedError):
    """The gateway cannot judge this request exactly; answer `status` with `body()`."""

    def __init__(self, status: int, code: int, message: str, request_id: str | int | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def body(self) -> bytes:
        """The JSON-RPC error response to send back."""
        return jsonrpc_error(self.request_id, self.code, self.message)


def jsonrpc_error(request_id: str | int | None, code: int, message: str) -> bytes:
    """A JSON-RPC 2.0 error response; `id` is null when the request id is unknown."""
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(body, separators=(",", ":")).encode()


# --- headers -------------------------------------------------------------------------------------


def media_type_ok(value: str | None, expected: str) -> bool:
    """`expected` exactly, optionally with `charset=utf-8` (the only body encoding judged)."""
    if value is None or not value.startswith(expected):
        return False
    media, *params = value.split(";")
    if media.rstrip() != expected:
        return False
    for param in params:
        name, sep, val = param.partition("=")
        if not sep or name.strip().lower() != "charset" or val.strip().strip('"').lower() != "utf-8":
            return False
    return True


def _accepts(headers: Mapping[str, str]) -> tuple[bool, bool]:
    """`check_accept_headers` of server/streamable_http.py:87-102: (has_json, has_sse)."""
    accept_types = [t.strip().split(";")[0].strip().lower() for t in headers.get("accept", "").split(",")]
    wildcard = "*/*" in accept_types
    has_json = wildcard or any(t in ("application/json", "application/*") for t in accept_types)
    has_sse = wildcard or any(t in ("text/event-stream", "text/*") for t in accept_types)
    return has_json, has_sse


def _duplicated(pairs: Iterable[tuple[str, str]]) -> str | None:
    seen: set[str] = set()
    for name, _ in pairs:
        key = name.lower()
        if key in _SINGLE_HEADERS:
            if key in seen:
                return key
            seen.add(key)
    return None


def _lower_headers(
    headers: Mapping[str, str], raw_headers: Iterable[tuple[str, str]] | None
) -> dict[str, str]:
    """Lower-cased headers, first copy kept (as Starlette's `Headers.get`); judged ones must be single.

    `headers.items()` may list a header twice (Starlette's `Headers` do); a plain dict has hidden
    duplicates already, which is what `raw_headers` (the header lines as received) is for.
    """
    pairs = list(headers.items())
    for source in (pairs, raw_headers or ()):
        if (duplicate := _duplicated(source)) is not None:
            raise McpRefused(400, HEADER_MISMATCH, f"{duplicate} header appears more than once")
    folded: dict[str, str] = {}
    for name, value in pairs:
        folded.setdefault(name.lower(), value)
    return folded


# --- messages ------------------------------------------------------------------------------------


def _is_request_id(value: Any) -> bool:
    """`RequestId` of mcp_types/jsonrpc.py:32: a strict int (bool is not one) or a string."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _invalid(message: str, request_id: str | int | None = None) -> McpRefused:
    return McpRefused(400, INVALID_REQUEST, message, request_id)


def _required_str(params: Mapping[str, Any], key: str, method: str, request_id: str | int | None) -> str:
    value = params.get(key)
    if not isinstance(value, str):
        raise McpRefused(400, INVALID_PARAMS, f"{method} needs params.{key} as a string", request_id)
    return value


def _optional_object(
    params: Mapping[str, Any], key: str, method: str, request_id: str | int | None
) -> Mapping[str, Any]:
    if key not in params:
        return MappingProxyType({})
    value = params[key]
    if not isinstance(value, dict):
        raise McpRefused(400, INVALID_PARAMS, f"{method} params.{key} must be an object", request_id)
    return MappingProxyType(value)


def _message(obj: dict[str, Any], *, modern: bool) -> McpMessage:
    """One JSON-RPC object as the server's envelope models read it, or a refusal."""
    request_id: str | int | None = obj["id"] if _is_request_id(obj.get("id")) else None
    if obj.get("jsonrpc") != "2.0":
        raise _invalid('jsonrpc must be "2.0"', request_id)
    if "method" not in obj:
        return _response(obj, modern=modern, request_id=request_id)
    if not _REQUEST_KEYS.issuperset(obj):
        raise _invalid("unexpected members in a JSON-RPC request", request_id)
    method = obj["method"]
    if not isinstance(method, str):
        raise _invalid("method must be a string", request_id)
    if "id" in obj and request_id is None:
        raise _invalid("id must be a string or an integer")
    raw_params = obj.get("params", {})
    if not isinstance(raw_params, dict):
        raise _invalid("params must be an object", request_id)
    params: Mapping[str, Any] = MappingProxyType(raw_params)
    tool_name = prompt_name = resource_uri = task_id = None
    subscribed_uris: tuple[str, ...] = ()
    tool_arguments: Mapping[str, Any] | None = None
    if method == "tools/call":
        tool_name = _required_str(params, "name", method, request_id)
        tool_arguments = _optional_object(params, "arguments", method, request_id)
    elif method == "prompts/get":
        prompt_name = _required_str(params, "name", method, request_id)
        _optional_object(params, "arguments", method, request_id)
    elif _NAME_KEYS.get(method) == "uri":
        resource_uri = _required_str(params, "uri", method, request_id)
    elif method == "completion/complete":
        prompt_name, resource_uri = _completion_ref(params, request_id)
    elif method in TASK_METHODS:
        task_id = _required_str(params, "taskId", method, request_id)
    elif method == "subscriptions/listen":
        subscribed_uris = _subscribed_uris(params, request_id)
    return McpMessage(
        kind="request" if "id" in obj else "notification",
        id=request_id,
        method=method,
        params=params,
        tool_name=tool_name,
        tool_arguments=tool_arguments,
        prompt_name=prompt_name,
        resource_uri=resource_uri,
        task_id=task_id,
        subscribed_uris=subscribed_uris,
    )


def _subscribed_uris(params: Mapping[str, Any], request_id: str | int | None) -> tuple[str, ...]:
    """`params.notifications.resourceSubscriptions` (mcp_types `SubscriptionFilter`).

    agentgateway authorizes each URI as a resource (mcp/session.rs `SubscriptionsListenRequest`).
    A request without `notifications` names none, and the server refuses it (its params model
    requires the member), so it reaches nothing unjudged.
    """
    method = "subscriptions/listen"
    notifications = _optional_object(params, "notifications", method, request_id)
    uris = notifications.get("resourceSubscriptions")
    if uris is None:
        return ()
    if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
        raise McpRefused(
            400,
            INVALID_PARAMS,
            f"{method} params.notifications.resourceSubscriptions must be a list of strings",
            request_id,
        )
    return tuple(uris)


def _completion_ref(params: Mapping[str, Any], request_id: str | int | None) -> tuple[str | None, str | None]:
    """`completion/complete` is judged as what its `ref` names (mcp/session.rs `CompleteRequest`).

    A `ref/prompt` by its `name` (as `prompts/get`), a `ref/resource` by its `uri` (as
    `resources/read`); any other reference agentgateway refuses, and so does the gateway.
    """
    method = "completion/complete"
    ref = params.get("ref")
    if not isinstance(ref, dict):
        raise McpRefused(400, INVALID_PARAMS, f"{method} needs params.ref as an object", request_id)
    kind = ref.get("type")
    if kind == "ref/prompt":
        return _required_str(ref, "name", f"{method} ref/prompt", request_id), None
    if kind == "ref/resource":
        return None, _required_str(ref, "uri", f"{method} ref/resource", request_id)
    raise McpRefused(
        400, INVALID_PARAMS, f"{method} params.ref.type must be ref/prompt or ref/resource", request_id
    )


def _response(obj: dict[str, Any], *, modern: bool, request_id: str | int | None) -> McpMessage:
    """A client's answer to a server request (session era only)."""
    if modern:
        # _streamable_http_modern.py:422: a posted response fails JSONRPCRequest -> -32600.
        raise _invalid("the 2026-07-28 server accepts no posted responses", request_id)
    if request_id is None:
        raise _invalid("a response needs an id that is a string or an integer")
    if set(obj) == {"jsonrpc", "id", "result"}:
        if not isinstance(obj["result"], dict):
            raise _invalid("result must be an object", request_id)
    elif set(obj) == {"jsonrpc", "id", "error"}:
        error = obj["error"]
        code = error.get("code") if isinstance(error, dict) else None
        if (
            not isinstance(error, dict)
            or not _ERROR_KEYS.issuperset(error)
            or not isinstance(code, int)
            or isinstance(code, bool)
            or not isinstance(error.get("message"), str)
        ):
            raise _invalid("error must be an object with an integer code and a string message", request_id)
    else:
        raise _invalid("not a JSON-RPC request, notification or response", request_id)
    return McpMessage(
        kind="response",
        id=request_id,
        method=None,
        params=MappingProxyType({}),
        tool_name=None,
        tool_arguments=None,
        prompt_name=None,
        resource_uri=None,
    )


def _check_routing_headers(message: McpMessage, headers: Mapping[str, str], *, modern: bool) -> None:
    """Mcp-Method / Mcp-Name must agree with the body; 2026 requests must carry them (inbound.py:448)."""
    method_header = headers.get(METHOD_HEADER)
    name_header = headers.get(NAME_HEADER)
    required = modern and message.kind == "request"
    if message.method is None:
        if method_header is not None or name_header is not None:
            raise McpRefused(400, HEADER_MISMATCH, "routing headers on a response", message.id)
        return
    if (required or method_header is not None) and method_header != message.method:
        raise McpRefused(
            400, HEADER_MISMATCH, f"{METHOD_HEADER} header does not match the body's method", message.id
        )
    name_key = _NAME_KEYS.get(message.method)
    if name_key is None:
        if name_header is not None:
            raise McpRefused(
                400, HEADER_MISMATCH, f"{NAME_HEADER} header on a method without a name", message.id
            )
        return
    body_value = message.params.get(name_key)
    if (required or name_header is not None) and decode_header_value(name_header) != body_value:
        raise McpRefused(
            400, HEADER_MISMATCH, f"{NAME_HEADER} header does not match the body's {name_key!r}", message.id
        )


def _check_modern_envelope(message: McpMessage, version: str) -> None:
    """`classify_inbound_request` rung 1-3 (inbound.py:429-488) for a 2026-07-28 request."""
    meta = message.params.get("_meta")
    if (
        not isinstance(meta, dict)
        or PROTOCOL_VERSION_META_KEY not in meta
        or CLIENT_CAPABILITIES_META_KEY not in meta
    ):
        raise McpRefused(
            400,
            INVALID_PARAMS,
            f"params._meta must carry {PROTOCOL_VERSION_META_KEY!r} and {CLIENT_CAPABILITIES_META_KEY!r}",
            message.id,
        )
    if meta[PROTOCOL_VERSION_META_KEY] != version:
        raise McpRefused(
            400,
            HEADER_MISMATCH,
            f"{PROTOCOL_VERSION_HEADER} header does not match the request envelope's protocol version",
            message.id,
        )


# --- requests ------------------------------------------------------------------------------------


def parse_request(
    http_method: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_body: int = MAX_BODY_DEFAULT,
    json_response: bool = False,
    raw_headers: Iterable[tuple[str, str]] | None = None,
) -> McpRequest:
    """Parse one HTTP request to an MCP endpoint as the SDK server would execute it.

    `headers` has lower-case keys; `raw_headers` (optional) are the header lines as received, so
    a routing header sent twice can be refused as the 2026 server does. `json_response` says the
    server answers POSTs with JSON only, which relaxes the Accept check exactly as the SDK does.
    Raises `McpRefused` for anything the gateway cannot judge exactly.
    """
    hdrs = _lower_headers(headers, raw_headers)
    version = hdrs.get(PROTOCOL_VERSION_HEADER)
    modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
    if http_method not in ("POST", "GET", "DELETE") or (modern and http_method != "POST"):
        raise McpRefused(405, INVALID_REQUEST, f"method {http_method} not allowed")
    if modern and version not in MODERN_PROTOCOL_VERSIONS:
        raise McpRefused(400, UNSUPPORTED_PROTOCOL_VERSION, f"unsupported protocol version {version!r}")
    session_id = hdrs.get(SESSION_HEADER)
    if session_id is not None and (modern or not _SESSION_ID.fullmatch(session_id)):
        raise McpRefused(400, INVALID_REQUEST, "unexpected or malformed Mcp-Session-Id")
    has_json, has_sse = _accepts(hdrs)

    if http_method != "POST":
        if body:
            raise McpRefused(400, INVALID_REQUEST, f"{http_method} carries no body")
        if METHOD_HEADER in hdrs or NAME_HEADER in hdrs:
            raise McpRefused(400, HEADER_MISMATCH, f"routing headers on {http_method}")
        if http_method == "GET" and not has_sse:
            raise McpRefused(406, INVALID_REQUEST, "client must accept text/event-stream")
        return McpRequest(http_method, version, session_id, (), False)

    declared = hdrs.get("content-length")
    if declared is not None:
        if not _DIGITS.fullmatch(declared):
            raise McpRefused(400, INVALID_REQUEST, "malformed Content-Length")
        if int(declared) > max_body:
            raise McpRefused(413, INVALID_REQUEST, "request body too large")
        if int(declared) != len(body):
            raise McpRefused(400, INVALID_REQUEST, "Content-Length does not match the body")
    if len(body) > max_body:
        raise McpRefused(413, INVALID_REQUEST, "request body too large")
    if not media_type_ok(hdrs.get("content-type"), "application/json"):
        raise McpRefused(415, INVALID_REQUEST, "Content-Type must be application/json")
    if not has_json or not (has_sse or json_response):
        raise McpRefused(406, INVALID_REQUEST, "client must accept application/json and text/event-stream")

    try:
        decoded = loads(body)
    except JsonError as exc:
        raise McpRefused(400, PARSE_ERROR, f"Parse error: {exc}") from exc
    if isinstance(decoded, list):
        raise _invalid("JSON-RPC batches are not accepted (the MCP server rejects them)")
    if not isinstance(decoded, dict):
        raise _invalid("body must be a JSON-RPC object")
    message = _message(decoded, modern=modern)
    _check_routing_headers(message, hdrs, modern=modern)

    protocol_version = version
    if modern and version is not None:
        if message.kind == "request":
            _check_modern_envelope(message, version)
        if message.method == "subscriptions/listen" and not has_sse:
            raise McpRefused(406, INVALID_REQUEST, "subscriptions/listen needs text/event-stream", message.id)
    elif message.method == "initialize":
        offered = message.params.get("protocolVersion")
        if not isinstance(offered, str) or (version is not None and version != offered):
            raise McpRefused(
                400, INVALID_PARAMS, "initialize needs params.protocolVersion matching any header"
            )
        protocol_version = offered
    return McpRequest(http_method, protocol_version, session_id, (message,), False)
