"""`tools/list` answers with what the caller may not use removed, read as the client reads them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from trustusbank.mesh.waypoint.mcp.request import media_type_ok
from trustusbank.mesh.waypoint.mcp.strict_json import JsonError, loads
from trustusbank.sse import events

# --- tools/list filtering ------------------------------------------------------------------------


def _filter_message(obj: Any, allowed: Callable[[str], bool]) -> bool:
    """Drop disallowed tools from a tools/list result in place; True if anything was dropped."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        raise ValueError("not a JSON-RPC message")
    if "result" not in obj:
        if "error" in obj or "method" in obj:
            return False  # an error, or a server request/notification: untouched
        raise ValueError("not a JSON-RPC message")
    if "error" in obj or "method" in obj:
        raise ValueError("ambiguous JSON-RPC message")
    result = obj["result"]
    tools = result.get("tools") if isinstance(result, dict) else None
    if not isinstance(tools, list):
        raise ValueError("result carries no tools list")
    kept = []
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise ValueError("a tool without a string name")
        if allowed(tool["name"]):
            kept.append(tool)
    if len(kept) == len(tools):
        return False
    result["tools"] = kept
    return True


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def filter_tools_list(content_type: str, body: bytes, allowed: Callable[[str], bool]) -> bytes:
    """A tools/list response with the tools `allowed` refuses removed; other messages untouched.

    `content_type` is the response's: `application/json` (one JSON-RPC response) or
    `text/event-stream` (JSON-RPC messages in `data:` lines of `message` events). A JSON body
    with nothing removed is returned byte for byte; an SSE body is re-serialised from the
    events as parsed, so the client reads exactly the events that were judged. Raises
    `ValueError` for anything it cannot parse, so the caller fails closed.
    """
    if media_type_ok(content_type.lower(), "application/json"):
        try:
            obj = loads(body)
        except JsonError as exc:
            raise ValueError(f"tools/list response: {exc}") from exc
        return _dump(obj).encode() if _filter_message(obj, allowed) else body
    if not media_type_ok(content_type.lower(), "text/event-stream"):
        raise ValueError(f"unexpected tools/list response content type {content_type!r}")
    if body.startswith(b"\xef\xbb\xbf"):
        raise ValueError("SSE body starts with a byte order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("SSE body is not UTF-8") from exc
    out: list[str] = []
    for event in events(text):
        data = "\n".join(event.data or ())
        if (
            event.event in ("", "message") and data
        ):  # what the client parses (mcp/client/streamable_http.py:182)
            try:
                obj = loads(data.encode())
            except JsonError as exc:
                raise ValueError(f"SSE message event: {exc}") from exc
            if _filter_message(obj, allowed):
                event.data = [_dump(obj)]
        out.append(event.render())
    return "".join(out).encode()
