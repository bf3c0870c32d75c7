"""Personal data as the console shows it: masked the way the agents mask their replies.

The spans keep tool arguments and results verbatim (that is what shows a profile handed
to a vendor's tool), so a page that printed them would put the customer's e-mail and NI
number on the operator's screen. The agents' own masker (`agents/scripted/masking.py`)
is reused, not restated: fields are masked by name in anything that parses as JSON, every
PII value seen anywhere in the session is masked wherever it recurs (a sub-agent's answer,
the customer's own message), and PII-shaped strings are caught by pattern.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from trustusbank.agents.scripted.masking import mask_field, masker_for, pii_values, scrub


def parsed(text: str) -> Any:
    """`text` as JSON when it is a JSON object or array, else the text itself."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


class Masker:
    """Masks with what one session revealed: every PII value in its tool arguments and results."""

    def __init__(self, revealed: Iterable[str] = ()) -> None:
        self.revealed = [data for data in (parsed(text) for text in revealed) if pii_values(data)]

    def text(self, text: str) -> str:
        """Free text (a message, a tool result that is not JSON), masked."""
        return scrub(text, self.revealed)

    def value(self, value: Any) -> Any:
        """A JSON value with PII fields masked by name and PII strings masked wherever they occur."""
        if isinstance(value, dict):
            masked: dict[str, Any] = {}
            for key, item in value.items():
                if masker_for(str(key)) is not None and isinstance(item, str | int | float):
                    masked[key] = mask_field(str(key), item)
                else:
                    masked[key] = self.value(item)
            return masked
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, str):
            inner = parsed(value)
            return self.value(inner) if not isinstance(inner, str) else self.text(value)
        return value

    def json_text(self, text: str) -> str:
        """A tool's arguments or result: masked, and pretty-printed when it is JSON."""
        inner = parsed(text)
        if isinstance(inner, str):
            return self.text(text)
        return json.dumps(self.value(inner), indent=2, ensure_ascii=False, sort_keys=True)
