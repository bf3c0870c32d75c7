"""A backend's answer to an MCP POST, read as the MCP client reads it, and written back.

The one parser for every change the waypoint makes to an answer: list filtering (`lists`) and
the MCP guard's masks (`proxy`). The body is `application/json` (one JSON-RPC message, or a
batch's array) or `text/event-stream`, whose JSON-RPC messages are the `data` of `message`
events (or events with no name), the ones the client parses (mcp/client/streamable_http.py).
A JSON body nothing changed in is returned byte for byte; an SSE body is re-serialised from the
events as parsed, so the client reads exactly the events that were judged. Anything that does
not parse raises `ValueError`, so the caller fails closed.
"""

from __future__ import annotations

import json
from typing import Any

from trustusbank.mesh.waypoint.mcp.request import media_type_ok
from trustusbank.mesh.waypoint.mcp.strict_json import JsonError, loads
from trustusbank.sse import Event, events


def dump(obj: Any) -> str:
    """Compact JSON, as the waypoint writes every message it changed."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Answer:
    """The JSON-RPC messages of one answer, in order; change them, then `render`."""

    def __init__(
        self, body: bytes, messages: list[Any], sse: list[Event] | None, slots: list[int], batch: bool
    ) -> None:
        self.body = body
        self.messages = messages
        self.batch = batch
        self._events = sse
        self._slots = slots  # the event each message came from (SSE)
        self._changed: set[int] = set()

    def changed(self, index: int) -> None:
        """Message `index` was changed in place (or replaced): render it anew."""
        self._changed.add(index)

    def replace(self, index: int, message: Any) -> None:
        self.messages[index] = message
        self.changed(index)

    def response_to(self, request_id: str | int | None) -> int | None:
        """The index of the response (result or error) that answers `request_id`, if any."""
        for index, message in enumerate(self.messages):
            if (
                isinstance(message, dict)
                and "method" not in message
                and ("result" in message or "error" in message)
                and "id" in message
                and message["id"] == request_id
                and type(message["id"]) is type(request_id)  # 1 and "1" and True are different ids
            ):
                return index
        return None

    def render(self) -> bytes:
        if self._events is None:
            if not self._changed:
                return self.body
            return dump(self.messages if self.batch else self.messages[0]).encode()
        for index in self._changed:
            self._events[self._slots[index]].data = [dump(self.messages[index])]
        return "".join(event.render() for event in self._events).encode()


def read_answer(what: str, content_type: str, body: bytes) -> Answer:
    """Parse `body` (the answer to `what`, e.g. `tools/list`, named in errors)."""
    if media_type_ok(content_type.lower(), "application/json"):
        try:
            obj = loads(body)
        except JsonError as exc:
            raise ValueError(f"{what} response: {exc}") from exc
        batch = isinstance(obj, list)
        return Answer(body, list(obj) if batch else [obj], None, [], batch)
    if not media_type_ok(content_type.lower(), "text/event-stream"):
        raise ValueError(f"unexpected {what} response content type {content_type!r}")
    if body.startswith(b"\xef\xbb\xbf"):
        raise ValueError("SSE body starts with a byte order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("SSE body is not UTF-8") from exc
    parsed = events(text)
    messages: list[Any] = []
    slots: list[int] = []
    for slot, event in enumerate(parsed):
        data = "\n".join(event.data or ())
        if event.event in ("", "message") and data:  # what the client parses
            try:
                messages.append(loads(data.encode()))
            except JsonError as exc:
                raise ValueError(f"SSE message event: {exc}") from exc
            slots.append(slot)
    return Answer(body, messages, parsed, slots, False)
