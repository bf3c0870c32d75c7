"""Streaming: server-sent events as both providers send them, and how a reply is cut into pieces.

Events are `event:` (Anthropic only) plus one `data:` line. Parsing lives here
too so tests and any streaming client read a stream the way the SSE spec says
rather than splitting on newlines by hand. Replies are cut the way real models
stream them (text by word, tool arguments mid-JSON) so that reassembly is tested.
"""

from __future__ import annotations

import json
import re
from typing import Any


def encode(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One event; `data` is JSON-encoded unless it is already a string (OpenAI's `[DONE]`)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def parse(text: str) -> list[tuple[str | None, str]]:
    """(event name or None, data) for every event in a complete stream; comments are skipped."""
    events: list[tuple[str | None, str]] = []
    event: str | None = None
    data: list[str] = []
    for line in [*text.replace("\r\n", "\n").split("\n"), ""]:
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    return events


def text_pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is `text`."""
    return re.findall(r"\S+\s*|\s+", text)


def halves(text: str) -> list[str]:
    """`text` cut in the middle (JSON arguments arrive split mid-token); no empty pieces."""
    middle = len(text) // 2
    return [piece for piece in (text[:middle], text[middle:]) if piece]
