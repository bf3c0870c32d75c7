"""Streaming: server-sent events as both providers send them, and how a reply is cut into pieces.

Events are `event:` (Anthropic only) plus one `data:` line, read back with the one
strict parser (`trustusbank.sse`) rather than by splitting on newlines by hand. Replies are
cut the way real models stream them (text by word, tool arguments mid-JSON) so that
reassembly is tested.
"""

from __future__ import annotations

import json
import re
from typing import Any

from trustusbank.sse import events


def encode(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One event; `data` is JSON-encoded unless it is already a string (OpenAI's `[DONE]`)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def parse(text: str) -> list[tuple[str | None, str]]:
    """(event name or None, data) for every event with data in a complete stream."""
    return [(e.event or None, "\n".join(e.data)) for e in events(text) if e.data]


def text_pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is `text`."""
    return re.findall(r"\S+\s*|\s+", text)


def halves(text: str) -> list[str]:
    """`text` cut in the middle (JSON arguments arrive split mid-token); no empty pieces."""
    middle = len(text) // 2
    return [piece for piece in (text[:middle], text[middle:]) if piece]
