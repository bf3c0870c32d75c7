"""List answers with what the caller may not use removed, read as the client reads them.

agentgateway filters every list it answers, not only tools (`merge_tools`, `merge_prompts`,
`merge_resources`, `merge_resource_templates` in mcp/handler.rs, v1.4.1): each item is kept
only if the backend's MCP authorization allows it, judged as the request that would use it -
a tool as `tools/call` on its `name`, a prompt as `prompts/get` on its `name`, a resource as
`resources/read` on its `uri`, and a resource template as a resource whose name is its
`uriTemplate` (`mcp.resource.name`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from trustusbank.mesh.waypoint.mcp.answer import read_answer

ItemKind = Literal["tool", "prompt", "resource"]


@dataclass(frozen=True)
class ListedItems:
    """Where a list answer keeps its items, and what each item is judged as."""

    result_key: str  # the result member holding the list
    name_key: str  # the item member naming it
    kind: ItemKind  # judged as this kind of MCP resource


LISTS: Final[Mapping[str, ListedItems]] = MappingProxyType(
    {
        "tools/list": ListedItems("tools", "name", "tool"),
        "prompts/list": ListedItems("prompts", "name", "prompt"),
        "resources/list": ListedItems("resources", "uri", "resource"),
        "resources/templates/list": ListedItems("resourceTemplates", "uriTemplate", "resource"),
    }
)
"""The list methods whose answers are filtered, as agentgateway filters them (mcp/handler.rs)."""


def _filter_message(obj: Any, listed: ListedItems, allowed: Callable[[str], bool]) -> bool:
    """Drop disallowed items from a list result in place; True if anything was dropped."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        raise ValueError("not a JSON-RPC message")
    if "result" not in obj:
        if "error" in obj or "method" in obj:
            return False  # an error, or a server request/notification: untouched
        raise ValueError("not a JSON-RPC message")
    if "error" in obj or "method" in obj:
        raise ValueError("ambiguous JSON-RPC message")
    result = obj["result"]
    items = result.get(listed.result_key) if isinstance(result, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"result carries no {listed.result_key} list")
    kept = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(listed.name_key), str):
            raise ValueError(f"a {listed.kind} without a string {listed.name_key}")
        if allowed(item[listed.name_key]):
            kept.append(item)
    if len(kept) == len(items):
        return False
    result[listed.result_key] = kept
    return True


def filter_tools_list(content_type: str, body: bytes, allowed: Callable[[str], bool]) -> bytes:
    """`filter_list` for a `tools/list` answer."""
    return filter_list("tools/list", content_type, body, allowed)


def filter_list(method: str, content_type: str, body: bytes, allowed: Callable[[str], bool]) -> bytes:
    """A `method` (one of `LISTS`) answer with the items `allowed` refuses removed.

    `allowed` is given each item's name (`name`, `uri` or `uriTemplate`, see `LISTS`); other
    messages (errors, server requests and notifications) are untouched.

    `content_type` is the response's: `application/json` (one JSON-RPC response) or
    `text/event-stream` (JSON-RPC messages in `data:` lines of `message` events). A JSON body
    with nothing removed is returned byte for byte; an SSE body is re-serialised from the
    events as parsed, so the client reads exactly the events that were judged. Raises
    `ValueError` for anything it cannot parse, so the caller fails closed.
    """
    listed = LISTS.get(method)
    if listed is None:
        raise ValueError(f"{method!r} is not a filtered list method")
    answer = read_answer(method, content_type, body)
    if answer.batch:
        raise ValueError(f"{method} response: not a JSON-RPC message (a batch)")
    for index, message in enumerate(answer.messages):
        if _filter_message(message, listed, allowed):
            answer.changed(index)
    return answer.render()
