"""Server-sent events: one strict parser, the one the MCP client's decoder implements.

The waypoint re-serialises filtered `tools/list` streams from what this parser saw, so it must
split a body exactly as the client will (httpx2 `_SSEEventDecoder`): a body that ends inside
an event is an error, not a guess. The model wire formats read their test streams with it too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Event:
    """One dispatched SSE event, with only the fields it carried (httpx2 `_SSEEventDecoder`)."""

    event: str = ""
    data: list[str] | None = None
    id: str | None = None
    retry: int | None = None

    def render(self) -> str:
        lines = []
        if self.event:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        lines.extend(f"data: {line}" for line in self.data or ())
        return "".join(f"{line}\r\n" for line in lines) + "\r\n"


def events(text: str) -> list[Event]:
    """Split an SSE body into events exactly as the MCP client's decoder (httpx2/_sse.py) does."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    tail = lines.pop()  # text after the last line break: an unterminated line
    events: list[Event] = []
    current: Event | None = None
    for line in lines:
        if not line:
            if current is not None:
                events.append(current)
            current = None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            current = current or Event()
            current.event = value
        elif field == "data":
            current = current or Event()
            current.data = [*(current.data or []), value]
        elif field == "id" and "\0" not in value:
            current = current or Event()
            current.id = value
        elif field == "retry":
            try:
                retry = int(value)
            except ValueError:
                continue
            current = current or Event()
            current.retry = retry
    if current is not None or tail:
        raise ValueError("SSE body ends inside an event")
    return events
